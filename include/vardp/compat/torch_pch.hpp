// Precompiled-header content for the library. LibTorch headers cost 30-60 s per translation
// unit on two cores; compiling them once into a PCH keeps CI under its time budget.
#pragma once
#include <torch/torch.h>
