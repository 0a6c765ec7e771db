// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_SRC_TESTING_HPP
#define MALLARD_SRC_TESTING_HPP

/*  The compiled part of <mallard/testing/client.hpp>, for separate
    compilation: include it in one translation unit of the test program
    (mallard::compiled holds it too; a static library's unused parts are not
    linked into programs that do not call them).
*/

#include <mallard/detail/config.hpp>

#ifndef MALLARD_SEPARATE_COMPILATION
#error "<mallard/src_testing.hpp> is for separate compilation: define MALLARD_SEPARATE_COMPILATION for every translation unit of the program"
#endif

#include <mallard/testing/impl/client.ipp>

#endif
