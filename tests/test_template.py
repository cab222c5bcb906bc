"""template.yaml's own consistency, beyond what cfn-lint checks."""

from __future__ import annotations

from cache_pilot_local.template import StackTemplate, function_code, load_sam_template


def test_no_output_is_named_like_a_parameter() -> None:
    # sam build's intrinsic resolver translates an output's name as if it were a Ref to the
    # parameter of the same name, and fails (or silently renames it) when one is.
    template = load_sam_template()
    assert set(template["Outputs"]) & set(template["Parameters"]) == set()


def test_every_function_has_its_code_and_a_log_group(stack: StackTemplate) -> None:
    functions = stack.of_type("AWS::Lambda::Function")
    assert set(functions) == {
        "SyncConfigFunction",
        "StartWarmupFunction",
        "FinishWarmupFunction",
        "CheckFreshnessFunction",
        "NatWatchdogFunction",
    }
    log_groups = {
        str(group["Properties"]["LogGroupName"])
        for group in stack.of_type("AWS::Logs::LogGroup").values()
    }
    for logical_id in functions:
        folder, handler = function_code(stack, logical_id)
        module, _, _ = handler.rpartition(".")
        assert (folder / f"{module}.py").is_file()
        assert str({"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"}) in log_groups
