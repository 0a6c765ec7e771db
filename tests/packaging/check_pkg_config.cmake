# SPDX-License-Identifier: BSL-1.0
# Builds with the flags of mallard's installed pkg-config files, as a program
# without CMake would. Run by ctest with -DPKG_CONFIG, -DPKG_CONFIG_DIR (the
# installed files), -DCOMPILER and -DSOURCE, and either
#   -DSYNTAX_ONLY=ON -DMODULES=a,b,...  compile SOURCE with the modules' flags,
#                                       front end only; or
#   -DWORK_DIR -DOPENSSL                build SOURCE (the consumer program)
#                                       with mallard-compiled and run it, then
#                                       with mallard-compiled-tls over wss://.
set(ENV{PKG_CONFIG_PATH} ${PKG_CONFIG_DIR})

# The flags pkg-config gives for `modules` (a list), split into arguments.
function(pkg_config_flags out what)
  execute_process(COMMAND ${PKG_CONFIG} ${what} ${ARGN}
    OUTPUT_VARIABLE flags ERROR_VARIABLE errors RESULT_VARIABLE failed
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(failed)
    message(FATAL_ERROR "pkg-config ${what} ${ARGN} failed in ${PKG_CONFIG_DIR}:\n${errors}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

# Runs a command; fails the test with its output when it fails.
function(run what)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE output ERROR_VARIABLE errors
    RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "${what} failed (${failed}):\n${ARGN}\n${output}${errors}")
  endif()
  set(run_output "${output}" PARENT_SCOPE)
endfunction()

if(SYNTAX_ONLY)
  string(REPLACE "," ";" modules "${MODULES}")
  pkg_config_flags(cflags --cflags ${modules})
  if(NOT cflags MATCHES "-I[^;]*/include")
    message(FATAL_ERROR "pkg-config --cflags ${modules} names no include directory: ${cflags}")
  endif()
  run("compiling every header, header-only, with ${modules}"
    ${COMPILER} ${cflags} -fsyntax-only -Wall -Wextra ${SOURCE})
  return()
endif()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# ws:// only: the compiled library, and no OpenSSL.
pkg_config_flags(cflags --cflags mallard-compiled)
pkg_config_flags(libs --libs mallard-compiled)
if(libs MATCHES "ssl|crypto")
  message(FATAL_ERROR "mallard-compiled links OpenSSL: ${libs}")
endif()
run("building the consumer with mallard-compiled"
  ${COMPILER} ${cflags} ${SOURCE} -o ${WORK_DIR}/consumer ${libs})
run("the consumer built with mallard-compiled" ${WORK_DIR}/consumer)
message(STATUS "${run_output}")
run("reading the consumer's libraries" readelf -d ${WORK_DIR}/consumer)
if(run_output MATCHES "libssl|libcrypto")
  message(FATAL_ERROR "the ws:// consumer links OpenSSL:\n${run_output}")
endif()

# wss://: the compiled TLS session and OpenSSL, with a certificate made here.
run("making a certificate"
  ${OPENSSL} req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1
  -keyout ${WORK_DIR}/key.pem -out ${WORK_DIR}/cert.pem)
pkg_config_flags(cflags --cflags mallard-compiled-tls)
pkg_config_flags(libs --libs mallard-compiled-tls)
run("building the consumer with mallard-compiled-tls"
  ${COMPILER} ${cflags} -DCONSUMER_TLS ${SOURCE} -o ${WORK_DIR}/consumer-tls ${libs})
run("the consumer built with mallard-compiled-tls"
  ${WORK_DIR}/consumer-tls ${WORK_DIR}/cert.pem ${WORK_DIR}/key.pem)
message(STATUS "${run_output}")
