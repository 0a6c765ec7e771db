// SPDX-License-Identifier: BSL-1.0
// mallard::compiled: the server and its ws:// sessions.
#include <mallard/src.hpp>
