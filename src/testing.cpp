// SPDX-License-Identifier: BSL-1.0
// mallard::compiled: the testing client.
#include <mallard/src_testing.hpp>
