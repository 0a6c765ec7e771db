// SPDX-License-Identifier: BSL-1.0
// Catch's main, alone in its translation unit so it compiles once.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
