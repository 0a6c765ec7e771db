// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_SRC_TLS_HPP
#define MALLARD_SRC_TLS_HPP

/*  The compiled part of <mallard/tls.hpp> (wss://, OpenSSL) and of
    <mallard/testing/tls_client.hpp>, for separate
    compilation: include it in one translation unit beside <mallard/src.hpp>
    (the CMake target mallard::compiled_tls does so for you).
*/

#include <mallard/detail/config.hpp>

#ifndef MALLARD_SEPARATE_COMPILATION
#error "<mallard/src_tls.hpp> is for separate compilation: define MALLARD_SEPARATE_COMPILATION for every translation unit of the program"
#endif

#include <mallard/impl/tls.ipp>
#include <mallard/testing/impl/tls_client.ipp>

// The session on a TLS stream, in full: no other translation unit
// instantiates it.
template class mallard::detail::session<mallard::detail::tls_transport>;

#endif
