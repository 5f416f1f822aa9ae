{
  "targets": [
    {
      "target_name": "vhostfd",
      "sources": ["vhostfd.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
