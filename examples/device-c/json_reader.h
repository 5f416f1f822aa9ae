/* A tiny JSON reader for the harness protocol (see json_reader.c). */
#ifndef JSON_READER_H
#define JSON_READER_H

#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jnode {
    enum jtype type;
    const char *key; /* member name when the parent is an object */
    size_t key_len;
    const char *str; /* J_STR: decoded text (in the line buffer); J_NUM: the digits */
    size_t len;
    int boolean;
    int first;   /* J_ARR/J_OBJ: index of the first child, -1 when empty */
    int next;    /* next sibling, -1 at the end */
};

/* The nodes of the last parsed line; node indices are valid until the next parse. */
extern struct jnode *json_pool;

/* Parses one line (modified in place); returns the root node index or -1 when malformed. */
int json_parse_line(char *line, size_t len);
/* The member `key` of object node `obj`, or -1. */
int json_member(int obj, const char *key);
/* Whether node n is the string s. */
int json_str_is(int n, const char *s);
/* Node n as a non-negative JSON integer: 0, or -1 when it is not one. */
int json_get_uint(int n, uint64_t *out);
/* Node n as a 64-bit quantity (a string of "0x" hex or decimal digits): 0, or -1. */
int json_get_u64(int n, uint64_t *out);
/* The value of one hex digit, or -1. */
int json_hexval(int c);

#endif
