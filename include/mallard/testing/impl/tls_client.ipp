// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TESTING_IMPL_TLS_CLIENT_IPP
#define MALLARD_TESTING_IMPL_TLS_CLIENT_IPP

// The testing client's TLS stream. Compiled once, by <mallard/src_tls.hpp>,
// in separate mode.

#include <mallard/testing/tls_client.hpp>
#include <mallard/testing/detail/client_state.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>
#include <utility>

namespace mallard::testing {

namespace detail {

inline net::ssl::context make_trusting_context(tls_trust const& trust)
{
    net::ssl::context context(net::ssl::context::tls_client);
    context.set_options(net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                        net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    context.set_verify_mode(net::ssl::verify_peer);
    error_code ec;
    context.load_verify_file(trust.certificate_file, ec);
    if (ec)
        throw std::invalid_argument("mallard::testing::tls_client: cannot read the certificates "
                                    "to trust from \"" + trust.certificate_file + "\": " +
                                    ec.message());
    return context;
}

// Constructed before the stream, which keeps a reference to it.
struct trusting_context {
    explicit trusting_context(tls_trust const& trust) : context(make_trusting_context(trust)) {}
    net::ssl::context context;
};

class tls_client_state final
    : private trusting_context
    , public basic_client_state<beast::ssl_stream<beast::tcp_stream>> {
public:
    explicit tls_client_state(tls_trust const& trust)
        : trusting_context(trust)
        , basic_client_state(context)
        , server_name_(trust.server_name)
    {
    }

    void handshake(std::string const& host, std::string const& target,
                   client_options const& options, callback done) override
    {
        auto const name = server_name_.empty() ? options.host : server_name_;
        auto& tls = ws_.next_layer();
        error_code ec;
        (void)net::ip::make_address(name, ec);
        // SNI names a host; RFC 6066 section 3 leaves addresses out.
        if (ec && !SSL_set_tlsext_host_name(tls.native_handle(), name.c_str()))
            return done(error_code(static_cast<int>(ERR_get_error()),
                                   net::error::get_ssl_category()));
        tls.set_verify_callback(net::ssl::host_name_verification(name));
        tls.async_handshake(net::ssl::stream_base::client,
                            [this, host, target, options, done = std::move(done)](error_code e) {
                                if (e)
                                    return done(e);
                                websocket_handshake(host, target, options, std::move(done));
                            });
    }

private:
    std::string server_name_;
};

} // namespace detail

MALLARD_DECL tls_client::tls_client(unsigned short port, std::string target,
                                    tls_trust const& trust, client_options options)
    : client(std::make_unique<detail::tls_client_state>(trust), port, std::move(target),
             std::move(options))
{
}

} // namespace mallard::testing

#endif
