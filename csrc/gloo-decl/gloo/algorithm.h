// Declarations for torch's ProcessGroupGloo.hpp only: see README.md.
#pragma once
#include "gloo/context.h"
