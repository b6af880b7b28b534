{
  "targets": [
    {
      "target_name": "shmx",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/args.cc",
        "native/shared_buffer.cc",
        "native/sigbus.cc",
        "native/segment.cc",
        "native/message_queue.cc",
        "native/process_facts.cc",
        "native/futex.cc",
        "native/doorbell.cc",
        "native/file_lock.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=gnu++20", "-Wall", "-Wextra", "-fexceptions"],
      "ldflags": ["-Wl,-z,nodelete", "-lrt", "-pthread"]
    }
  ]
}
