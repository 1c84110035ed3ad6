import Testing
import MetaQLanguage

@Suite struct IncompleteInputTests {
    @Test(arguments: [
        "model net = mlp <",
        "model net = mlp < in 1",
        "let b = m <\n  a 1",
        "train m on sine <",
        "let r = < lr 1",
        "print (1 +",
        "f(",
        "let x = [1,",
        "let x = [\n",
        "if x {",
        "fn f(x) {\n  return x",
        "while true {\n  if x {\n    break\n  }",
        "let s = \"abc",
        "print \"line one\n",
        "let x =",
        "x +",
        "a or",
        "let g = fn(x) ->",
        "for x in",
        "if x > 1",
        "let x = 1 +  # trailing comment",
        "let x",  // '=' may follow on the next line
    ])
    func incomplete(_ text: String) {
        #expect(Parser.isIncomplete(text))
    }

    @Test(arguments: [
        "",
        "# just a comment",
        "print 1",
        "print (1 + 2)",
        "let x = [1, 2]",
        "if x { }",
        "let s = \"abc\"",
        "model net = mlp < in 1 >",
        ")",
        "}",
        "let x = 1 2",
        "f(1 2",
        "let x = @",
        exampleProgram,
    ])
    func complete(_ text: String) {
        #expect(!Parser.isIncomplete(text))
    }
}
