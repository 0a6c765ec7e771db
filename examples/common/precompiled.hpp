// SPDX-License-Identifier: BSL-1.0
// Precompiled for the examples: the heavy, stable headers they all include.
#include <mallard/mallard.hpp>
