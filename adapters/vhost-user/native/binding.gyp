{
  "targets": [
    {
      "target_name": "vhostfd",
      "sources": ["vhostfd.c", "mappings.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
