// Boost.JSON's implementation, compiled once for mtw_api and its users
// (Debian ships Boost.JSON without a CMake package config).
#include <boost/json/src.hpp>
