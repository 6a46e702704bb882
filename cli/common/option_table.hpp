// Internal to the ferry command: the command line's own option tables as JSON.
#pragma once

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

namespace ferry::cli {

/// Every command and subcommand of `app` with its options, as CLI11 holds
/// them: names, value type, how many values, default, description. The man
/// pages, the bash completion and the option-walking tests are generated from
/// this, so none of them can drift from what the parser accepts.
nlohmann::json option_table(const CLI::App& app);

/// The flag main answers before parsing (`ferry --option-table`): prints
/// option_table(app) on standard output. Not listed in --help: a build tool.
inline constexpr const char* kOptionTableFlag = "--option-table";

}  // namespace ferry::cli
