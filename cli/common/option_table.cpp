// Internal to the ferry command: walks CLI11's tree of commands into JSON.
#include "common/option_table.hpp"

namespace ferry::cli {
namespace {

nlohmann::json option_entry(const CLI::Option& option) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& s : option.get_snames())
        names.push_back("-" + s);
    for (const auto& l : option.get_lnames())
        names.push_back("--" + l);
    const bool positional = !option.nonpositional();
    return {
        {"name", option.get_name(positional)},
        {"names", names},
        {"positional", positional},
        {"takes_value", option.get_items_expected_max() > 0},
        {"values_max", option.get_items_expected_max()},
        {"type", option.get_type_name()},
        {"required", option.get_required()},
        {"default", option.get_default_str()},
        {"description", option.get_description()},
    };
}

}  // namespace

nlohmann::json option_table(const CLI::App& app) {
    nlohmann::json options = nlohmann::json::array();
    for (const CLI::Option* option : app.get_options()) {
        // --help and --version are CLI11's own; the tables list ferry's.
        if (option == app.get_help_ptr() || option == app.get_help_all_ptr()) continue;
        options.push_back(option_entry(*option));
    }
    nlohmann::json subcommands = nlohmann::json::array();
    for (const CLI::App* sub : app.get_subcommands({}))
        subcommands.push_back(option_table(*sub));
    return {
        {"name", app.get_name()},
        {"description", app.get_description()},
        {"options", options},
        {"subcommands", subcommands},
    };
}

}  // namespace ferry::cli
