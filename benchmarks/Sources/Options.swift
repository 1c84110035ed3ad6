/// The value after `--name` in `arguments`, or nil when the option or its value is missing.
func optionValue(_ name: String, in arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: "--\(name)"), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
