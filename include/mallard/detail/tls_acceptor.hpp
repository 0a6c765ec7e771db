// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_TLS_ACCEPTOR_HPP
#define MALLARD_DETAIL_TLS_ACCEPTOR_HPP

// The server's side of the TLS seam: it hands a freshly accepted socket on a
// TLS port to "whatever serves wss://". The one implementation, on OpenSSL,
// is in impl/tls.ipp; the server only sees this interface.

#include <mallard/detail/config.hpp>
#include <mallard/detail/tcp_socket.hpp>
#include <mallard/task.hpp>
#include <mallard/tls_context.hpp>

namespace mallard::detail {

struct server_state;
class worker;

class tls_acceptor : public tls_context {
public:
    /// Serves one connection accepted on a TLS port: the TLS handshake, then
    /// HTTP and WebSocket as on a plain port. Runs on the worker's thread.
    virtual task<void> serve(tcp_socket socket, server_state& server,
                             worker& w) const = 0;
};

} // namespace mallard::detail

#endif
