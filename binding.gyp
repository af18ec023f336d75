# CPU-only source build of the addon with node-gyp, for a clone of the repository (the
# package ships neither this file nor an install script). The full build is CMakeLists.txt.
# Sources are listed by scripts/gyp-sources.js: native/binding/*.cc and native/cpu/*.cc,
# with the *_avx2.cc / *_avx512.cc kernels in their own targets (own compiler flags).
{
  "variables": {
    "supcon_cflags": ["-std=c++17", "-O3", "-ffp-contract=fast", "-fexceptions"]
  },
  "targets": [
    {
      "target_name": "supcon_kernels_avx2",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["<!@(node scripts/gyp-sources.js avx2)"],
          "cflags_cc": ["<@(supcon_cflags)", "-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(supcon_cflags)", "-mavx2", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "supcon_kernels_avx512",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["<!@(node scripts/gyp-sources.js avx512)"],
          "cflags_cc": ["<@(supcon_cflags)", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(supcon_cflags)", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "supcon",
      "sources": ["<!@(node scripts/gyp-sources.js portable)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<@(supcon_cflags)"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["<@(supcon_cflags)"]
      },
      "conditions": [
        ["target_arch=='x64'", {
          "dependencies": ["supcon_kernels_avx2", "supcon_kernels_avx512"]
        }]
      ]
    }
  ]
}
