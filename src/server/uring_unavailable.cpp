// The io_uring model's entry point in a library built without liburing
// (FERRY_WITH_URING=OFF, or AUTO with no liburing found): every other model
// works, and asking for this one is a run-time error that says why.
#include <system_error>

#include "shared.hpp"

namespace ferry::detail {
namespace {

/// Reads as the reason alone, without a ": Operation not supported" suffix.
class UringNotBuiltIn : public Error {
  public:
    UringNotBuiltIn()
        : Error(std::make_error_code(std::errc::not_supported),
                "the io_uring model is not built in (this ferry was built without liburing)",
                Verbatim{}) {}
};

}  // namespace

void run_uring(StreamServer::Shared&) {
    throw UringNotBuiltIn();
}

}  // namespace ferry::detail
