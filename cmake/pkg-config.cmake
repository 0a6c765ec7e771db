# SPDX-License-Identifier: BSL-1.0
# pkg-config files for builds without CMake, installed beside the CMake
# package. One per target, so that a program links only what it uses:
#
#   mallard                  header-only: the include path, -std=c++20,
#                            Boost.URL, zlib and threads
#   mallard-tls              + OpenSSL (wss://, <mallard/tls.hpp>)
#   mallard-redis            + hiredis (<mallard/redis.hpp>)
#   mallard-json             + Boost.JSON (<mallard/json.hpp>)
#   mallard-compiled         separate compilation: MALLARD_SEPARATE_COMPILATION
#                            and the compiled library (installed with it only)
#   mallard-compiled-tls     + the compiled TLS session and OpenSSL
#   mallard-compiled-redis   + the compiled Redis backplane and hiredis
#
#   c++ app.cpp $(pkg-config --cflags --libs mallard-compiled) -o app
#
# The files find their prefix from where they are (${pcfiledir}), so that an
# installed tree can move (`cmake --install build --prefix somewhere`).

set(_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH _pc_to_prefix /${_pc_dir} /)
string(REGEX REPLACE "/$" "" _pc_to_prefix "${_pc_to_prefix}")
set(_pc_out ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig)

set(_pc_cflags "-I\${includedir} -std=c++20")
set(_pc_libs "-lboost_url -pthread")
if(MALLARD_IO_URING AND NOT _mallard_io_uring_why)
  string(APPEND _pc_cflags " -DBOOST_ASIO_HAS_IO_URING -DBOOST_ASIO_DISABLE_EPOLL")
  string(APPEND _pc_libs " -luring")
endif()

# Writes <name>.pc and installs it.
function(mallard_pkg_config name description requires cflags libs)
  file(CONFIGURE OUTPUT ${_pc_out}/${name}.pc @ONLY CONTENT
"prefix=\${pcfiledir}/${_pc_to_prefix}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}

Name: ${name}
Description: ${description}
Version: ${PROJECT_VERSION}
Requires: ${requires}
Cflags: ${cflags}
Libs: ${libs}
")
  install(FILES ${_pc_out}/${name}.pc DESTINATION ${_pc_dir})
endfunction()

mallard_pkg_config(mallard "C++20 WebSocket server library on Boost.Beast (header-only)"
  "zlib" "${_pc_cflags}" "${_pc_libs}")
if(TARGET mallard_tls)
  mallard_pkg_config(mallard-tls "mallard: wss:// on OpenSSL (header-only)"
    "mallard, openssl" "" "")
endif()
if(TARGET mallard_redis)
  mallard_pkg_config(mallard-redis "mallard: groups across processes through Redis (header-only)"
    "mallard, hiredis" "" "")
endif()
if(TARGET mallard_json)
  mallard_pkg_config(mallard-json "mallard: JSON messages with Boost.JSON"
    "mallard" "" "-lboost_json")
endif()

# The compiled libraries' files only where they are installed: an install of
# a build that did not make them has the header-only files alone.
if(MALLARD_BUILD_COMPILED)
  mallard_pkg_config(mallard-compiled "mallard, compiled once into a static library"
    "mallard" "-DMALLARD_SEPARATE_COMPILATION" "-L\${libdir} -lmallard_compiled")
  if(TARGET mallard_compiled_tls)
    mallard_pkg_config(mallard-compiled-tls "mallard: wss:// on OpenSSL, compiled"
      "mallard-compiled, openssl" "" "-L\${libdir} -lmallard_compiled_tls")
  endif()
  if(TARGET mallard_compiled_redis)
    mallard_pkg_config(mallard-compiled-redis "mallard: Redis backplane, compiled"
      "mallard-compiled, hiredis" "" "-L\${libdir} -lmallard_compiled_redis")
  endif()
endif()
