import MetaQLanguage

/// The example program from the language design; it must parse without diagnostics.
let exampleProgram = #"""
# sine.mq
seed 7
let K = 10
model net = mlp < in 1 hidden [40, 40] out 1 act relu >
tasks sine = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 support K query 10 >
learner m = maml < model net order 2
  inner < steps 1 lr 0.01 >
  outer < opt adam lr 0.001 batch 25 >
>
train m on sine < iters 20000 >
let r = eval m on sine < tasks 600 support 5 steps [1, 5, 10] >
print r                       # a table
print r.rows[0].mean
tasks quad = regression < f fn(x, a, b) -> a * x * x + b  a -1..1  b 0..2  x -3..3 >
fn square(x) {
  return x * x
}
let xs = [1, 2, 3]
for x in xs {
  if x > 1 and not (x == 3) { print square(x) } else { print "small" }
}
var i = 0
while i < 3 { i = i + 1 }
save m to "sine.mqm"
import "common.mq"
let s = "tab\t\"quoted\"\n"
let t = true or false
let e = 1e-3 + 2.5E+2 - -4 % 3 ^ 2
let big = (a < b)
let rec = < lr 0.01 steps 5 >
let g = fn(x) -> x * 2
print g(3)
"""#

/// Parses `text` as a file named `test.mq`.
func parse(_ text: String) -> (file: SourceFile, program: Program, diagnostics: [Diagnostic]) {
    let file = SourceFile(name: "test.mq", text: text)
    let (program, diagnostics) = Parser.parse(file)
    return (file, program, diagnostics)
}

/// Diagnostics as `line:column: message`, the form golden tests compare.
func lineColumnMessages(_ diagnostics: [Diagnostic], in file: SourceFile) -> [String] {
    diagnostics.map { "\(file.location(of: $0.range.start)): \($0.message)" }
}
