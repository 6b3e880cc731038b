// Fixture for module_check_rejects_an_upward_include: a "core" file that includes the trainer.
#pragma once
#include <vector>
#include "core/error.h"
#include "train/trainer.h"
