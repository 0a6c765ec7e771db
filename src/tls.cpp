// SPDX-License-Identifier: BSL-1.0
// mallard::compiled_tls: wss:// on OpenSSL.
#include <mallard/src_tls.hpp>
