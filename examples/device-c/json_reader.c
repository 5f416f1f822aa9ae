/*
 * A tiny JSON reader for the harness protocol's messages: one line is parsed in place (strings
 * are decoded inside the line buffer) into a node pool that is reused from line to line, so a
 * command costs no allocation once the pool has grown to the largest message seen.
 */
#include "json_reader.h"

#include <stdlib.h>
#include <string.h>
/* ---- a tiny JSON reader (in place, into a reusable node json_pool) ----------------------------- */


struct jnode *json_pool;
static int pool_len, pool_cap;

struct jparser {
    char *p, *end;
    int depth;
};

static int new_node(enum jtype type)
{
    if (pool_len == pool_cap) {
        int cap = pool_cap ? pool_cap * 2 : 256;
        struct jnode *grown = realloc(json_pool, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        json_pool = grown;
        pool_cap = cap;
    }
    struct jnode *n = &json_pool[pool_len];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->first = n->next = -1;
    return pool_len++;
}

static void skip_ws(struct jparser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
        ps->p++;
}

int json_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses a string at ps->p (opening quote) and decodes it in place. */
static int parse_string(struct jparser *ps, const char **out, size_t *out_len)
{
    char *w = ++ps->p, *start = w;
    while (ps->p < ps->end && *ps->p != '"') {
        char c = *ps->p++;
        if ((unsigned char)c < 0x20)
            return -1;
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        if (ps->p >= ps->end)
            return -1;
        c = *ps->p++;
        switch (c) {
        case '"': case '\\': case '/': *w++ = c; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            if (ps->end - ps->p < 4)
                return -1;
            unsigned v = 0;
            for (int i = 0; i < 4; i++) {
                int h = json_hexval(ps->p[i]);
                if (h < 0)
                    return -1;
                v = v * 16 + (unsigned)h;
            }
            ps->p += 4;
            *w++ = v < 0x80 ? (char)v : '?'; /* the protocol's strings are ASCII */
            break;
        }
        default: return -1;
        }
    }
    if (ps->p >= ps->end)
        return -1;
    ps->p++;
    *out = start;
    *out_len = (size_t)(w - start);
    return 0;
}

static int parse_value(struct jparser *ps);

static int parse_container(struct jparser *ps, int is_obj)
{
    int node = new_node(is_obj ? J_OBJ : J_ARR), last = -1;
    if (node < 0 || ++ps->depth > 16)
        return -1;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (is_obj ? '}' : ']')) {
        ps->p++;
        ps->depth--;
        return node;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        skip_ws(ps);
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"' || parse_string(ps, &key, &key_len) != 0)
                return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p++ != ':')
                return -1;
        }
        int child = parse_value(ps);
        if (child < 0)
            return -1;
        json_pool[child].key = key;
        json_pool[child].key_len = key_len;
        if (last < 0)
            json_pool[node].first = child;
        else
            json_pool[last].next = child;
        last = child;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return -1;
        char c = *ps->p++;
        if (c == ',')
            continue;
        if (c == (is_obj ? '}' : ']'))
            break;
        return -1;
    }
    ps->depth--;
    return node;
}

static int parse_value(struct jparser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return -1;
    char c = *ps->p;
    if (c == '{' || c == '[')
        return parse_container(ps, c == '{');
    if (c == '"') {
        int n = new_node(J_STR);
        if (n < 0 || parse_string(ps, &json_pool[n].str, &json_pool[n].len) != 0)
            return -1;
        return n;
    }
    static const struct { const char *word; enum jtype type; int value; } words[] = {
        {"true", J_BOOL, 1}, {"false", J_BOOL, 0}, {"null", J_NULL, 0}};
    for (size_t i = 0; i < 3; i++) {
        size_t wl = strlen(words[i].word);
        if ((size_t)(ps->end - ps->p) >= wl && memcmp(ps->p, words[i].word, wl) == 0) {
            int n = new_node(words[i].type);
            if (n < 0)
                return -1;
            json_pool[n].boolean = words[i].value;
            ps->p += wl;
            return n;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int n = new_node(J_NUM);
        if (n < 0)
            return -1;
        json_pool[n].str = ps->p;
        while (ps->p < ps->end && strchr("+-0123456789.eE", *ps->p))
            ps->p++;
        json_pool[n].len = (size_t)(ps->p - json_pool[n].str);
        return n;
    }
    return -1;
}

/* Parses one line; returns the root node index or -1. */
int json_parse_line(char *line, size_t len)
{
    struct jparser ps = {line, line + len, 0};
    pool_len = 0;
    int root = parse_value(&ps);
    if (root < 0)
        return -1;
    skip_ws(&ps);
    return ps.p == ps.end ? root : -1;
}

int json_member(int obj, const char *key)
{
    if (obj < 0 || json_pool[obj].type != J_OBJ)
        return -1;
    size_t kl = strlen(key);
    for (int c = json_pool[obj].first; c >= 0; c = json_pool[c].next)
        if (json_pool[c].key_len == kl && memcmp(json_pool[c].key, key, kl) == 0)
            return c;
    return -1;
}

int json_str_is(int n, const char *s)
{
    return n >= 0 && json_pool[n].type == J_STR && json_pool[n].len == strlen(s) && memcmp(json_pool[n].str, s, json_pool[n].len) == 0;
}

/* A small non-negative integer (JSON number). */
int json_get_uint(int n, uint64_t *out)
{
    if (n < 0 || json_pool[n].type != J_NUM || json_pool[n].len == 0 || json_pool[n].len > 16)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < json_pool[n].len; i++) {
        char c = json_pool[n].str[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return 0;
}

/* A 64-bit quantity: a string of "0x" hex or decimal digits. */
int json_get_u64(int n, uint64_t *out)
{
    if (n < 0 || json_pool[n].type != J_STR || json_pool[n].len == 0)
        return -1;
    const char *s = json_pool[n].str;
    size_t len = json_pool[n].len, i = 0;
    uint64_t v = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        if (len > 18)
            return -1;
        for (i = 2; i < len; i++) {
            int h = json_hexval(s[i]);
            if (h < 0)
                return -1;
            v = v << 4 | (uint64_t)h;
        }
    } else {
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
    }
    *out = v;
    return 0;
}
