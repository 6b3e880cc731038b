// Fixture for module_check_accepts_allowed_includes: only core and the standard library.
#pragma once
#include <vector>
#include "core/error.h"
