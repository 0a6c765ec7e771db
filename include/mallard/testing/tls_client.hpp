// SPDX-License-Identifier: BSL-1.0
/// @file
/// The testing client over wss:// (OpenSSL; CMake target mallard::compiled_tls or mallard::tls).
#ifndef MALLARD_TESTING_TLS_CLIENT_HPP
#define MALLARD_TESTING_TLS_CLIENT_HPP

#include <mallard/detail/config.hpp>
#include <mallard/testing/client.hpp>

#include <string>

namespace mallard::testing {

/// Which server certificate a `tls_client` accepts.
struct tls_trust {
    /// A PEM file of the certificates to trust: the server's own when it is
    /// self-signed, or the authority that signed it. Required.
    std::string certificate_file;
    /// The name the server's certificate must be for: a DNS name, sent as
    /// SNI too, or an IP address. Empty (the default): the host connected to.
    std::string server_name{};
};

/** `client` over wss://: TLS 1.2 or 1.3, the server's certificate checked
    against `tls_trust`, then the same WebSocket handshake and calls.

    In its own header so that test programs that do not use TLS do not
    compile Asio's SSL layer; separately compiled, its body is in
    `mallard::compiled_tls`.

    @par Example
    @code
    mallard::testing::tls_client c{srv.port(), "/ws/echo", {.certificate_file = "cert.pem"}};
    c.send_text("hello");
    REQUIRE(c.receive()->data == "You sent hello");
    @endcode
*/
class tls_client : public client {
public:
    /** Connects to `options.host`:`port`, performs the TLS handshake, checks
        the server's certificate, then performs the opening handshake.

        @throws std::invalid_argument when `trust.certificate_file` cannot be
        read as PEM certificates.
        @throws upgrade_refused when the server answers with a status other
        than 101.
        @throws std::system_error when the connection or the TLS handshake
        fails (a certificate not trusted among the causes), or
        `options.timeout` passes.
    */
    MALLARD_DECL tls_client(unsigned short port, std::string target, tls_trust const& trust,
                            client_options options = {});
};

} // namespace mallard::testing

#ifdef MALLARD_HEADER_ONLY
#include <mallard/testing/impl/tls_client.ipp>
#endif

#endif
