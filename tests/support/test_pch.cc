// The one source of the targets that hold the tests' precompiled headers
// (cmake/BerthHelpers.cmake, berth_test_pch).
