# SPDX-License-Identifier: BSL-1.0
# Fails when <mallard/mallard.hpp>, in separate mode, includes Beast's
# WebSocket stream, its HTTP parser, zlib or a session header: a user's
# translation unit would compile them again. Run by ctest with -DCOMPILER,
# -DINCLUDE_DIR and -DWORK_DIR.
file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/user.cpp "#include <mallard/mallard.hpp>\n")
execute_process(
  COMMAND ${COMPILER} -std=c++20 -DMALLARD_SEPARATE_COMPILATION -I${INCLUDE_DIR}
          -M ${WORK_DIR}/user.cpp
  OUTPUT_VARIABLE dependencies
  ERROR_VARIABLE errors
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the compiler failed on <mallard/mallard.hpp>:\n${errors}")
endif()
if(NOT dependencies MATCHES "mallard/server\\.hpp")
  message(FATAL_ERROR "the dependency list names no mallard/server.hpp; the check checks nothing:\n${dependencies}")
endif()
set(failed "")
foreach(forbidden
    "boost/beast/websocket"
    "boost/beast/http/parser"
    "boost/beast/http/read"
    "zlib\\.h"
    "mallard/detail/session[a-z_]*\\.hpp"
    "mallard/detail/listener\\.hpp"
    "mallard/impl/")
  string(REGEX MATCHALL "[^ \\\n]*${forbidden}[^ \\\n]*" found "${dependencies}")
  if(found)
    list(JOIN found "\n  " lines)
    string(APPEND failed "\n  ${lines}")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "<mallard/mallard.hpp> in separate mode includes what it must not:${failed}")
endif()
message(STATUS "<mallard/mallard.hpp> in separate mode includes no WebSocket stream, "
               "HTTP parser, zlib or session")
