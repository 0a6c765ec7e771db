// SPDX-License-Identifier: BSL-1.0
// The examples' --cert/--key. Kept in a translation unit of its own: the TLS
// connection code is a large template instantiation, compiled once here
// rather than in every example.

#include "example_args.hpp"

#include <mallard/tls.hpp>

namespace examples {

std::shared_ptr<mallard::tls_context const> load_certificate(std::string const& cert,
                                                             std::string const& key)
{
    return mallard::load_tls({.certificate_chain_file = cert, .private_key_file = key});
}

} // namespace examples
