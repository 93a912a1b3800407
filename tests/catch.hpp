// One include for Catch2 2.x (Debian 12) and 3.x (Ubuntu 24.04, the GPU machines).
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif
