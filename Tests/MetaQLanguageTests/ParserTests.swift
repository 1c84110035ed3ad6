import Testing
import MetaQLanguage

/// One golden case: metaq source and the S-expression `ASTPrinter` must print for it.
struct GoldenCase: Sendable, CustomTestStringConvertible {
    var source: String
    var expected: String
    var testDescription: String { source.debugDescription }

    init(_ source: String, _ expected: String) {
        self.source = source
        self.expected = expected
    }
}

@Suite struct ParserTests {
    static let statements: [GoldenCase] = [
        GoldenCase("let x = 1 + 2 * 3", "(let x (+ 1 (* 2 3)))"),
        GoldenCase("var i = 0", "(var i 0)"),
        GoldenCase("model net = mlp < in 1 >", "(decl model net (block mlp (in 1)))"),
        GoldenCase("stream s = source", "(decl stream s source)"),
        GoldenCase("i = i + 1", "(= i (+ i 1))"),
        GoldenCase("r.best = 2", "(= (. r best) 2)"),
        GoldenCase("a[i] = b[j]", "(= (index a i) (index b j))"),
        GoldenCase("fn square(x) {\n  return x * x\n}", "(fn square (x) (do (return (* x x))))"),
        GoldenCase("fn f() { }", "(fn f () (do))"),
        GoldenCase("fn f(a, b,) { return }", "(fn f (a b) (do (return)))"),
        GoldenCase("fn f() { return eval m on t }", "(fn f () (do (return (command eval m (on t)))))"),
        GoldenCase("if a { x }", "(if a (do x))"),
        GoldenCase("if a { x } else { y }", "(if a (do x) (else (do y)))"),
        GoldenCase("if a { } else if b { } else if c { } else { }", "(if a (do) (elif b (do)) (elif c (do)) (else (do)))"),
        GoldenCase("if a {\n  x\n}\nelse {\n  y\n}", "(if a (do x) (else (do y)))"),
        GoldenCase("if a\n{ x }", "(if a (do x))"),
        GoldenCase("for x in xs { print x }", "(for x xs (do (command print x)))"),
        GoldenCase("for i in 0..n { }", "(for i (.. 0 n) (do))"),
        GoldenCase("while i < 3 { i = i + 1 }", "(while (< i 3) (do (= i (+ i 1))))"),
        GoldenCase("while true { break; continue }", "(while true (do (break) (continue)))"),
        GoldenCase("import \"common.mq\"", "(import \"common.mq\")"),
        GoldenCase("f(1)", "(call f 1)"),
        GoldenCase("r", "r"),
        GoldenCase("let a = 1; let b = 2;\n\n;let c = 3", "(let a 1)\n(let b 2)\n(let c 3)"),
    ]

    static let expressions: [GoldenCase] = [
        // Literals and primaries.
        GoldenCase("let v = 42", "(let v 42)"),
        GoldenCase("let v = 0.01", "(let v 0.01)"),
        GoldenCase("let v = 2.0", "(let v 2.0)"),
        GoldenCase("let v = \"a\\tb\"", "(let v \"a\\tb\")"),
        GoldenCase("let v = true or false", "(let v (or true false))"),
        GoldenCase("let v = 2 * pi", "(let v (* 2 pi))"),
        GoldenCase("let v = [1, 2, 3]", "(let v (list 1 2 3))"),
        GoldenCase("let v = []", "(let v (list))"),
        GoldenCase("let v = [\n  1,\n  [2, 3],\n]", "(let v (list 1 (list 2 3)))"),
        GoldenCase("let v = (1)", "(let v 1)"),
        // Precedence and associativity, lowest to highest.
        GoldenCase("let v = a or b and c", "(let v (or a (and b c)))"),
        GoldenCase("let v = a or b or c", "(let v (or (or a b) c))"),
        GoldenCase("let v = not a and b", "(let v (and (not a) b))"),
        GoldenCase("let v = not not a", "(let v (not (not a)))"),
        GoldenCase("let v = not a == b", "(let v (not (== a b)))"),
        GoldenCase("let v = a == b and c != d", "(let v (and (== a b) (!= c d)))"),
        GoldenCase("let v = a <= b or c >= d", "(let v (or (<= a b) (>= c d)))"),
        GoldenCase("let v = a > 1..2", "(let v (> a (.. 1 2)))"),
        GoldenCase("let v = 1 + 2..3 * 4", "(let v (.. (+ 1 2) (* 3 4)))"),
        GoldenCase("let v = 1 - 2 - 3", "(let v (- (- 1 2) 3))"),
        GoldenCase("let v = 1 - 2 + 3", "(let v (+ (- 1 2) 3))"),
        GoldenCase("let v = 8 / 4 / 2 % 3", "(let v (% (/ (/ 8 4) 2) 3))"),
        GoldenCase("let v = 1 + 2 * 3 - 4", "(let v (- (+ 1 (* 2 3)) 4))"),
        GoldenCase("let v = -2^2", "(let v (- (^ 2 2)))"),
        GoldenCase("let v = 2^3^2", "(let v (^ 2 (^ 3 2)))"),
        GoldenCase("let v = 2^-1", "(let v (^ 2 (- 1)))"),
        GoldenCase("let v = - -4", "(let v (- (- 4)))"),
        GoldenCase("let v = -a * b", "(let v (* (- a) b))"),
        GoldenCase("let v = (1 + 2) * 3", "(let v (* (+ 1 2) 3))"),
        GoldenCase("let e = 1e-3 + 2.5E+2 - -4 % 3 ^ 2", "(let e (- (+ 0.001 250.0) (% (- 4) (^ 3 2))))"),
        GoldenCase("let v = (a < b) < c", "(let v (< (< a b) c))"),
        // Postfix.
        GoldenCase("let v = r.rows[0].mean", "(let v (. (index (. r rows) 0) mean))"),
        GoldenCase("let v = f(x)(y)", "(let v (call (call f x) y))"),
        GoldenCase("let v = f()", "(let v (call f))"),
        GoldenCase("let v = f(x, steps: 5)", "(let v (call f x (steps: 5)))"),
        GoldenCase("let v = f(\n  in: 1,\n  2,\n)", "(let v (call f (in: 1) 2))"),
        GoldenCase("let v = a.in", "(let v (. a in))"),
        GoldenCase("let v = -x.y^2", "(let v (- (^ (. x y) 2)))"),
        // Lambdas.
        GoldenCase("let g = fn(x) -> x * 2", "(let g (lambda (x) (* x 2)))"),
        GoldenCase("let g = fn() -> 1", "(let g (lambda () 1))"),
        GoldenCase("let g = fn(x) -> x < 2 and x > 0", "(let g (lambda (x) (and (< x 2) (> x 0))))"),
        GoldenCase("let h = fn(x) -> fn(y) -> x + y", "(let h (lambda (x) (lambda (y) (+ x y))))"),
        GoldenCase("let h = fn(x) ->\n  x", "(let h (lambda (x) x))"),
        GoldenCase("print g(3)", "(command print (call g 3))"),
        // Line continuation: a line ending in an operator, ',' '=' or '->' continues.
        GoldenCase("let v = 1 +\n  2", "(let v (+ 1 2))"),
        GoldenCase("let v =\n  3", "(let v 3)"),
        GoldenCase("let v = a and\n  b", "(let v (and a b))"),
        GoldenCase("let v = (1\n  + 2)", "(let v (+ 1 2))"),
        GoldenCase("let v = 1\n-2", "(let v 1)\n(- 2)"),
    ]

    static let blocks: [GoldenCase] = [
        GoldenCase("let n = mlp < in 1 hidden [40, 40] out 1 act relu >",
                   "(let n (block mlp (in 1) (hidden (list 40 40)) (out 1) (act relu)))"),
        GoldenCase("let t = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 >",
                   "(let t (block sinusoid (amplitude (.. 0.1 5.0)) (phase (.. 0 pi)) (x (.. (- 5) 5))))"),
        GoldenCase("let b = m < lr 2*pi size 3 - 1 >", "(let b (block m (lr (* 2 pi)) (size (- 3 1))))"),
        GoldenCase("let b = m < a 1, b 2, >", "(let b (block m (a 1) (b 2)))"),
        GoldenCase("let b = m <\n  a 1\n  b 2\n>", "(let b (block m (a 1) (b 2)))"),
        GoldenCase("let b = f <\n k 1 >", "(let b (block f (k 1)))"),
        GoldenCase("let b = m < >", "(let b (block m))"),
        GoldenCase("let b = m <>", "(let b (block m))"),
        GoldenCase("let b = m < in 1 fn 2 if 3 >", "(let b (block m (in 1) (fn 2) (if 3)))"),
        GoldenCase("let b = m < a \"s\" b true c pi d x >", "(let b (block m (a \"s\") (b true) (c pi) (d x)))"),
        GoldenCase("let b = m < a (x < y) >", "(let b (block m (a (< x y))))"),
        GoldenCase("let b = m < a [1,\n 2] >", "(let b (block m (a (list 1 2))))"),
        GoldenCase("let b = m < a f(1) >", "(let b (block m (a (call f 1))))"),
        // Nested blocks and records.
        GoldenCase("let b = maml < inner < steps 1 lr 0.01 > outer < opt adam > >",
                   "(let b (block maml (inner (record (steps 1) (lr 0.01))) (outer (record (opt adam)))))"),
        GoldenCase("let b = maml < model mlp < in 1 > order 2 >",
                   "(let b (block maml (model (block mlp (in 1))) (order 2)))"),
        GoldenCase("let b = m < x < y < z 1 > > >", "(let b (block m (x (record (y (record (z 1)))))))"),
        GoldenCase("let rec = < lr 0.01 steps 5 >", "(let rec (record (lr 0.01) (steps 5)))"),
        GoldenCase("let rec = <>", "(let rec (record))"),
        GoldenCase("let l = [< a 1 >, m < b 2 >]", "(let l (list (record (a 1)) (block m (b 2))))"),
        GoldenCase("< a 1 >", "(record (a 1))"),
        GoldenCase("sine < iters 20000 >", "(block sine (iters 20000))"),
        GoldenCase("let v = f(m < k 1 >)", "(let v (call f (block m (k 1))))"),
        // Lambdas in blocks stop before the next key.
        GoldenCase("tasks quad = regression < f fn(x, a, b) -> a * x * x + b  a -1..1  b 0..2  x -3..3 >",
                   "(decl tasks quad (block regression (f (lambda (x a b) (+ (* (* a x) x) b))) (a (.. (- 1) 1)) (b (.. 0 2)) (x (.. (- 3) 3))))"),
        GoldenCase("let b = m < f fn(x) -> x g 2 >", "(let b (block m (f (lambda (x) x)) (g 2)))"),
        GoldenCase("let b = m < f fn(x) -> (x > 0) >", "(let b (block m (f (lambda (x) (> x 0)))))"),
        GoldenCase("let b = m < f fn(x) -> fn(y) -> x * y k 1 >",
                   "(let b (block m (f (lambda (x) (lambda (y) (* x y)))) (k 1)))"),
        // '<' disambiguation: these are comparisons.
        GoldenCase("if a < b { }", "(if (< a b) (do))"),
        GoldenCase("while i < n { }", "(while (< i n) (do))"),
        GoldenCase("let t = a < b", "(let t (< a b))"),
        GoldenCase("a < b and c", "(and (< a b) c)"),
        GoldenCase("let t = a < b or c", "(let t (or (< a b) c))"),
        GoldenCase("let t = x < n - 1", "(let t (< x (- n 1)))"),
        GoldenCase("let t = x < f(1)", "(let t (< x (call f 1)))"),
        GoldenCase("let t = x < a[0]", "(let t (< x (index a 0)))"),
        GoldenCase("let t = x < y.z", "(let t (< x (. y z)))"),
        GoldenCase("let t = x < 3", "(let t (< x 3))"),
        GoldenCase("let big = (a < b)", "(let big (< a b))"),
        GoldenCase("let t = (a.b) < c", "(let t (< (. a b) c))"),
        // ... and these are blocks.
        GoldenCase("let t = x < n -1 >", "(let t (block x (n (- 1))))"),
        GoldenCase("let t = x < n (1) >", "(let t (block x (n 1)))"),
        GoldenCase("let t = x < n [1] >", "(let t (block x (n (list 1))))"),
        GoldenCase("let t = x < n fn() -> 1 >", "(let t (block x (n (lambda () 1))))"),
        GoldenCase("let t = x < n <> >", "(let t (block x (n (record))))"),
    ]

    static let commands: [GoldenCase] = [
        GoldenCase("seed 7", "(command seed 7)"),
        GoldenCase("print r", "(command print r)"),
        GoldenCase("print \"small\"", "(command print \"small\")"),
        GoldenCase("print square(x)", "(command print (call square x))"),
        GoldenCase("print r.rows[0].mean", "(command print (. (index (. r rows) 0) mean))"),
        GoldenCase("print x + 1", "(command print (+ x 1))"),
        GoldenCase("print x > 1", "(command print (> x 1))"),
        GoldenCase("print not done", "(command print (not done))"),
        GoldenCase("print -x", "(command print (- x))"),
        GoldenCase("print [1, 2]", "(command print (list 1 2))"),
        GoldenCase("print (1)", "(command print 1)"),
        GoldenCase("f (x)", "(command f x)"),
        GoldenCase("x -5", "(command x (- 5))"),
        GoldenCase("x - 5", "(- x 5)"),
        GoldenCase("x-5", "(- x 5)"),
        GoldenCase("save m to \"sine.mqm\"", "(command save m (to \"sine.mqm\"))"),
        GoldenCase("load m with a to b", "(command load m (with a) (to b))"),
        GoldenCase("train m on sine < iters 20000 >", "(command train m (on sine) (options (iters 20000)))"),
        GoldenCase("train m on data.sine < iters 5 >", "(command train m (on (. data sine)) (options (iters 5)))"),
        GoldenCase("let r = eval m on sine < tasks 600 support 5 steps [1, 5, 10] >",
                   "(let r (command eval m (on sine) (options (tasks 600) (support 5) (steps (list 1 5 10)))))"),
        GoldenCase("print mlp < in 1 >", "(command print mlp (options (in 1)))"),
        GoldenCase("print (mlp < in 1 >)", "(command print (block mlp (in 1)))"),
        GoldenCase("train m on sine <\n  iters 5\n>", "(command train m (on sine) (options (iters 5)))"),
        GoldenCase("print x\n< a 1 >", "(command print x)\n(record (a 1))"),
        GoldenCase("apply fn(x) -> x * 2 on xs", "(command apply (lambda (x) (* x 2)) (on xs))"),
        GoldenCase("x = eval m on t", "(= x (command eval m (on t)))"),
        GoldenCase("model net = build mlp", "(decl model net (command build mlp))"),
    ]

    @Test(arguments: statements + expressions + blocks + commands)
    func golden(_ golden: GoldenCase) {
        let (file, program, diagnostics) = parse(golden.source)
        #expect(ASTPrinter.format(program) == golden.expected)
        #expect(lineColumnMessages(diagnostics, in: file) == [])
    }

    @Test func exampleProgramParses() {
        let (file, program, diagnostics) = parse(exampleProgram)
        #expect(lineColumnMessages(diagnostics, in: file) == [])
        #expect(ASTPrinter.format(program) == """
            (command seed 7)
            (let K 10)
            (decl model net (block mlp (in 1) (hidden (list 40 40)) (out 1) (act relu)))
            (decl tasks sine (block sinusoid (amplitude (.. 0.1 5.0)) (phase (.. 0 pi)) (x (.. (- 5) 5)) (support K) (query 10)))
            (decl learner m (block maml (model net) (order 2) (inner (record (steps 1) (lr 0.01))) (outer (record (opt adam) (lr 0.001) (batch 25)))))
            (command train m (on sine) (options (iters 20000)))
            (let r (command eval m (on sine) (options (tasks 600) (support 5) (steps (list 1 5 10)))))
            (command print r)
            (command print (. (index (. r rows) 0) mean))
            (decl tasks quad (block regression (f (lambda (x a b) (+ (* (* a x) x) b))) (a (.. (- 1) 1)) (b (.. 0 2)) (x (.. (- 3) 3))))
            (fn square (x) (do (return (* x x))))
            (let xs (list 1 2 3))
            (for x xs (do (if (and (> x 1) (not (== x 3))) (do (command print (call square x))) (else (do (command print "small"))))))
            (var i 0)
            (while (< i 3) (do (= i (+ i 1))))
            (command save m (to "sine.mqm"))
            (import "common.mq")
            (let s "tab\\t\\"quoted\\"\\n")
            (let t (or true false))
            (let e (- (+ 0.001 250.0) (% (- 4) (^ 3 2))))
            (let big (< a b))
            (let rec (record (lr 0.01) (steps 5)))
            (let g (lambda (x) (* x 2)))
            (command print (call g 3))
            """)
    }

    @Test func literalValuesAndKinds() throws {
        let (_, program, _) = parse("let v = [42, 0.5, \"s\", true, pi]")
        guard case .let(_, let value) = program.statements.first?.kind,
              case .list(let elements) = value.kind else {
            Issue.record("expected a let of a list")
            return
        }
        #expect(elements.map(\.kind) == [.integer(42), .float(0.5), .string("s"), .boolean(true), .pi])
    }

    @Test func rangesCoverTheirSource() {
        let (file, program, _) = parse("let r = eval m on sine < tasks 600 >\nfn f(x) { return x }")
        #expect(program.statements.map { file.text(in: $0.range) } == [
            "let r = eval m on sine < tasks 600 >",
            "fn f(x) { return x }",
        ])
        guard case .let(let name, let value) = program.statements[0].kind,
              case .command(let command, let arguments, let options) = value.kind else {
            Issue.record("expected a let of a command")
            return
        }
        #expect(file.text(in: name.range) == "r")
        #expect(file.text(in: command.range) == "eval")
        #expect(arguments.map { file.text(in: $0.range) } == ["m", "on sine"])
        #expect(options?.map { file.text(in: $0.range) } == ["tasks 600"])
        #expect(program.range == SourceRange(fileName: "test.mq", start: 0, end: file.byteCount))
    }

    @Test func commandArgumentsCarryConnectors() {
        let (_, program, _) = parse("save m to \"f.mqm\"")
        guard case .expression(let expression) = program.statements.first?.kind,
              case .command(let name, let arguments, let options) = expression.kind else {
            Issue.record("expected a command")
            return
        }
        #expect(name.name == "save")
        #expect(arguments.map(\.connector) == [nil, .to])
        #expect(options == nil)
    }

    @Test func deepButAllowedNesting() {
        let depth = 40
        let text = "let v = " + String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth)
        let (_, program, diagnostics) = parse(text)
        #expect(diagnostics.isEmpty)
        #expect(ASTPrinter.format(program) == "(let v 1)")
    }
}
