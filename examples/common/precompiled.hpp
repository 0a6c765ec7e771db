// SPDX-License-Identifier: BSL-1.0
// Precompiled for the examples: mallard's public headers with Asio's
// awaitable (declarations only: the examples link mallard::compiled).
#include <mallard/mallard.hpp>
