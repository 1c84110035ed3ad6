import Foundation
import Testing
@testable import MetaQLanguage

/// `metaq sweep`'s grid (--grid key=[values]), configuration names, and the results read back
/// from a run's JSON lines and CSV files.
@Suite struct SweepTests {
    private func error(_ specs: [String]) -> String? {
        do { _ = try SweepGrid(parsing: specs); return nil } catch { return error.description }
    }

    @Test func aGridExpandsToEveryCombinationTheFirstKeySlowest() throws {
        let grid = try SweepGrid(parsing: ["lr=[0.001, 0.01]", "m.inner.steps = [1, 5, 10]"])
        #expect(grid.keys == ["lr", "m.inner.steps"])
        let configurations = grid.configurations
        #expect(configurations.count == 6)
        #expect(configurations.map { $0.overrides.map(\.value) } == [
            ["0.001", "1"], ["0.001", "5"], ["0.001", "10"], ["0.01", "1"], ["0.01", "5"], ["0.01", "10"],
        ])
        #expect(configurations.map(\.index) == Array(0..<6))
        #expect(configurations[4].setArguments == ["--set", "lr=0.01", "--set", "m.inner.steps=5"])
        #expect(configurations[4].id == "004_lr=0.01_m.inner.steps=5")
    }

    @Test func valuesKeepTheirSourceTextIncludingStringsListsAndExpressions() throws {
        let grid = try SweepGrid(parsing: [#"which=["maml", "anil x/y"]"#, "shots=[[1, 5], [10]]", "lr=[1e-3, 2 * 0.01, -1]"])
        #expect(grid.values == [[#""maml""#, #""anil x/y""#], ["[1, 5]", "[10]"], ["1e-3", "2 * 0.01", "-1"]])
        let id = grid.configurations[1].id
        #expect(id.allSatisfy { $0.isLetter || $0.isNumber || "._-=".contains($0) }, "\(id) is a safe folder name")
        #expect(grid.configurations[0].id != grid.configurations[1].id)
    }

    @Test func badGridsGetClearErrors() {
        #expect(error([]) == "a sweep needs at least one --grid 'key=[value, ...]'")
        #expect(error(["lr"]) == "--grid expects key=[value, ...], got 'lr'")
        #expect(error(["=[1]"]) == "--grid '=[1]': '' is not a name or a declaration.key path")
        #expect(error(["m..lr=[1]"]) == "--grid 'm..lr=[1]': 'm..lr' is not a name or a declaration.key path")
        #expect(error(["lr=0.1"]) == "--grid lr: expected a list of values in brackets, such as [1, 2, 3], got '0.1'")
        #expect(error(["lr=[]"]) == "--grid lr: the list of values is empty")
        #expect(error(["lr=[1, 1]"]) == "--grid lr: a value is listed twice")
        #expect(error(["lr=[1]", "lr=[2]"]) == "--grid: 'lr' is swept twice")
        #expect(error(["lr=[1,"])?.hasPrefix("--grid lr: '[1,' is not a metaq list: ") == true)
        let big = "[" + (0..<400).map(String.init).joined(separator: ", ") + "]"
        #expect(error(["a=\(big)", "b=\(big)"]) == "the grid has more than 100000 configurations")
    }

    @Test func printedResultsBecomeNamedColumns() {
        let lines = """
            {"type":"string","value":"trained 100 meta-iterations in 0.5 s"}
            {"type":"string","value":"final loss: 0.25"}
            {"type":"float","value":1.5}
            {"type":"string","value":"5-shot:"}
            {"type":"report","value":{"metric":"mse","rows":[{"steps":0,"mean":2.5,"ci95":0.5,"tasks":10},{"steps":1,"mean":1.25,"ci95":0.25,"tasks":10}]}}
            {"type":"record","value":{"acc":0.75,"name":"x","ok":true,"losses":[3,2]}}
            {"type":"int","value":7}
            not json
            """
        let columns = SweepResults.columns(fromJSONLines: lines[...])
        #expect(columns.map { "\($0.0)=\($0.1)" } == [
            "final loss=0.25", "value=1.5", "5-shot.mse@0=2.5", "5-shot.ci95@0=0.5", "5-shot.mse@1=1.25", "5-shot.ci95@1=0.25",
            "acc=0.75", "losses[0]=3", "losses[1]=2", "name=x", "ok=true", "value_2=7",
        ])
    }

    @Test func csvRoundTripsQuotedFields() {
        let text = SweepCSV.table(header: ["a", "b"], rows: [["a": "1,2", "b": "say \"hi\""], ["a": "x\ny"]])
        #expect(text == "a,b\n\"1,2\",\"say \"\"hi\"\"\"\n\"x\ny\",\n")
        #expect(SweepCSV.parse(text) == [["a", "b"], ["1,2", "say \"hi\""], ["x\ny", ""]])
        #expect(SweepCSV.parse("a,b\r\n1,2\r\n") == [["a", "b"], ["1", "2"]])
    }
}
