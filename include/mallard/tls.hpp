// SPDX-License-Identifier: BSL-1.0
/// @file
/// wss://: the server on TLS (OpenSSL; CMake target mallard::tls).
#ifndef MALLARD_TLS_HPP
#define MALLARD_TLS_HPP

/*  wss://: TLS from OpenSSL under the same HTTP and WebSocket handling as
    ws://. Include this header and link the CMake target `mallard::tls`;
    programs that serve only ws:// need neither.
*/

#include <mallard/detail/config.hpp>
#include <mallard/tls_context.hpp>

#include <memory>
#include <string>

namespace mallard {

/// The oldest TLS version a client may use.
enum class tls_version {
    tls_1_2, ///< TLS 1.2 and 1.3; the default, as in current browser guidance
    tls_1_3, ///< TLS 1.3 only
};

/** Where the certificate and key for wss:// come from.

    Give each of the two either as a PEM file or as PEM text in memory (the
    `_pem` members), not both.
*/
struct tls_options {
    /// A PEM file: the server's certificate first, then any intermediates.
    std::string certificate_chain_file{};
    /// A PEM file holding the private key of the first certificate.
    std::string private_key_file{};
    /// The certificate chain as PEM text, instead of a file.
    std::string certificate_chain_pem{};
    /// The private key as PEM text, instead of a file.
    std::string private_key_pem{};
    /// The password of an encrypted private key; empty for none.
    std::string private_key_password{};
    /// The oldest TLS version accepted. Default TLS 1.2: older ones are broken.
    tls_version minimum_version = tls_version::tls_1_2;
};

/** Loads and checks a certificate chain and private key for wss://.

    Every check happens here, at setup: a file that cannot be read, text
    that is not PEM, a key that does not match the certificate, a wrong
    password, or a certificate that has expired (or is not valid yet) throws
    with a message naming the file (or field) and the problem.

    @par Example
    @code
    mallard::server srv{{.port = 8443,
                         .tls = mallard::load_tls({.certificate_chain_file = "cert.pem",
                                                   .private_key_file = "key.pem"})},
                        urls};
    @endcode
    @throws std::invalid_argument as described.
*/
MALLARD_DECL std::shared_ptr<tls_context const> load_tls(tls_options const& options);

} // namespace mallard

#ifdef MALLARD_HEADER_ONLY
#include <mallard/impl/tls.ipp>
#endif

#endif
