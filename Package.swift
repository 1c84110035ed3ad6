// swift-tools-version: 6.0
import PackageDescription

let releaseSpeed: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "metaq",
    products: [
        .executable(name: "metaq", targets: ["metaq"]),
        .library(name: "MetaQEngine", targets: ["MetaQEngine"]),
        .library(name: "MetaQLanguage", targets: ["MetaQLanguage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CPNG", path: "Sources/CPNG",
            providers: [.apt(["libpng-dev"])]),
        .systemLibrary(
            name: "CTurboJPEG", path: "Sources/CTurboJPEG",
            providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(
            name: "CMalloc", path: "Sources/CMalloc",
            providers: [.apt(["libmimalloc-dev"])]),
        .systemLibrary(
            name: "CEditLine", path: "Sources/CEditLine",
            providers: [.apt(["libedit-dev"])]),
        .target(name: "CInterrupt"),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(
            name: "MetaQEngine", dependencies: ["COpenBLAS", "CPNG", "CTurboJPEG", "CMalloc", "CKernels"],
            swiftSettings: releaseSpeed),
        // The metaq modules that ship with metaq (methods written in the language, imported by
        // name: `import "metaq/matching"`) are embedded in the binary.
        .target(name: "MetaQLanguage", dependencies: ["MetaQEngine"], resources: [.embedInCode("Modules")]),
        .target(name: "MetaQREPL", dependencies: ["MetaQLanguage", "CEditLine", "CInterrupt"]),
        .target(
            name: "MetaQServe",
            dependencies: ["MetaQEngine", .product(name: "Hummingbird", package: "hummingbird")]),
        .executableTarget(
            name: "metaq",
            dependencies: [
                "MetaQEngine", "MetaQLanguage", "MetaQREPL", "MetaQServe",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "metaq-bench", dependencies: ["MetaQEngine", "MetaQLanguage"], path: "benchmarks/Sources",
            swiftSettings: releaseSpeed),
        .testTarget(name: "MetaQEngineTests", dependencies: ["MetaQEngine"], exclude: ["Fixtures"]),
        .testTarget(name: "MetaQLanguageTests", dependencies: ["MetaQLanguage", "MetaQEngine"], exclude: ["Scripts"]),
        .testTarget(name: "MetaQREPLTests", dependencies: ["MetaQREPL", "MetaQLanguage"]),
        .testTarget(name: "MetaQServeTests", dependencies: ["MetaQServe"]),
    ]
)
