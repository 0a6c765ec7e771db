// SPDX-License-Identifier: BSL-1.0
/// @file
/// The certificate, key and settings of a TLS server.
#ifndef MALLARD_TLS_CONTEXT_HPP
#define MALLARD_TLS_CONTEXT_HPP

// The seam between the server and TLS, as users see it: a handle they get
// from load_tls and put into server_options. What the server calls on it is
// in detail/tls_acceptor.hpp; the OpenSSL side lives in <mallard/tls.hpp>,
// so programs without TLS never include or link OpenSSL.

namespace mallard {

/** A loaded certificate and key that serve wss://.

    Made by `mallard::load_tls` (in `<mallard/tls.hpp>`, CMake target
    `mallard::tls`) and set in `server_options::tls`. Immutable once made;
    one context may serve several servers. What it does with a connection is
    the library's business, so it has nothing to call.
*/
class tls_context {
public:
    virtual ~tls_context() = default;

protected:
    /// Made by `load_tls` only.
    tls_context() = default;
    /// Copied by the implementation only.
    tls_context(tls_context const&) = default;
    /// Assigned by the implementation only.
    tls_context& operator=(tls_context const&) = default;
};

} // namespace mallard

#endif
