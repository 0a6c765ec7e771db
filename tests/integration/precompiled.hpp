// SPDX-License-Identifier: BSL-1.0
// Precompiled for the integration tests: mallard with Asio and Beast, and Catch.
#include <catch2/catch.hpp>
#include <mallard/mallard.hpp>
#include <mallard/testing/client.hpp>
