import Foundation
import Testing
@testable import MetaQREPL

/// The JSON mode's pure parts (scripts/test-jupyter.sh runs the whole kernel under nbclient).
@Suite struct KernelTests {
    @Test func inspectionFindsTheWordAroundTheCursor() {
        #expect(KernelSession.word(in: "train m on sine", at: 2) == "train")
        #expect(KernelSession.word(in: "train m on sine", at: 5) == "train")
        #expect(KernelSession.word(in: "x = π + sinusoid", at: 16) == "sinusoid")
        #expect(KernelSession.word(in: "a  b", at: 2) == "")
    }
}
