// SPDX-License-Identifier: BSL-1.0
/// @file
/// mallard's version.
#ifndef MALLARD_VERSION_HPP
#define MALLARD_VERSION_HPP

/// mallard's version as MAJOR * 100000 + MINOR * 100 + PATCH.
#define MALLARD_VERSION 100
/// The major version: incompatible API changes raise it.
#define MALLARD_VERSION_MAJOR 0
/// The minor version: additions that keep the API raise it.
#define MALLARD_VERSION_MINOR 1
/// The patch version: fixes raise it.
#define MALLARD_VERSION_PATCH 0

#endif
