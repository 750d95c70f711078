"""The modelship policy pack: `pulumi preview --policy-pack policy` (run `policy/setup.sh` once first)."""
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy

import checks


def _validate(rule):
    def validate(args, report_violation):
        for problem in rule(args.urn, args.resource_type, args.props):
            report_violation(problem)

    return validate


def _validate_pinned(args, report_violation):
    stacks = args.get_config().get("stacks", list(checks.PINNED_STACKS))
    if checks.stack_of(args.urn) not in stacks:
        return
    for problem in checks.digest_pinned(args.urn, args.resource_type, args.props):
        report_violation(problem)


PolicyPack(
    name="modelship",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(
            ResourceValidationPolicy(name=name, description=description, validate=_validate(rule))
            for name, (description, rule) in checks.ALWAYS.items()
        ),
        ResourceValidationPolicy(
            name="prod-images-digest-pinned",
            description="On the pinned stacks (prod by default), the serving image is deployed pinned by digest.",
            validate=_validate_pinned,
            config_schema=PolicyConfigSchema(
                properties={"stacks": {"type": "array", "items": {"type": "string"}, "default": list(checks.PINNED_STACKS)}}
            ),
        ),
    ],
)
