// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_SRC_HPP
#define MALLARD_SRC_HPP

/*  The compiled part of mallard, for separate compilation: with
    MALLARD_SEPARATE_COMPILATION defined for the whole program, include this
    in exactly one translation unit (the CMake target mallard::compiled does
    so for you). It compiles the server, the WebSocket sessions on ws://, the
    HTTP handling and the views' and connection handles' operations.
    Programs using wss://, Redis or the testing client compile
    <mallard/src_tls.hpp>, <mallard/src_redis.hpp> or <mallard/src_testing.hpp>
    too, in the same or another translation unit.
*/

#include <mallard/detail/config.hpp>

#ifndef MALLARD_SEPARATE_COMPILATION
#error "<mallard/src.hpp> is for separate compilation: define MALLARD_SEPARATE_COMPILATION for every translation unit of the program, or include only the headers to use mallard header-only"
#endif

#include <mallard/impl/connection.ipp>
#include <mallard/impl/server.ipp>
#include <mallard/impl/server_metrics.ipp>
#include <mallard/impl/websocket_view.ipp>

// The session on a plain TCP stream, in full: no other translation unit
// instantiates it.
template class mallard::detail::session<mallard::detail::tcp_stream>;

#endif
