// SPDX-License-Identifier: BSL-1.0
// Precompiled for the integration tests: Catch, and mallard's public headers
// (declarations only: the tests link mallard::compiled).
#include <catch2/catch.hpp>
#include <mallard/mallard.hpp>
#include <mallard/testing/client.hpp>
