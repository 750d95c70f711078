"""How every Deployment the program makes rolls out, spreads and stops: the server's, the reverse proxy's and
monitoring's."""
from __future__ import annotations

import pulumi_kubernetes as k8s

# How long a terminating pod keeps serving before it is sent its stop signal: it leaves the Service's endpoints at
# once, but every node's kube-proxy takes a moment to drop it, so a rollout, drain or scale-down loses no request.
PRE_STOP_SECONDS = 5
# A rollout's extra pod: replicas + MAX_SURGE pods run at its peak (infra/capacity.py checks they fit).
MAX_SURGE = 1
# What `up` waits for on a Deployment, in place of the provider's own await: the controller has seen the current
# generation (the provider checks status.observedGeneration before any waitFor condition) and calls its rollout
# complete, which means every replica runs the new template and is available and no old pod is left. The provider's
# own await reads the conditions without that check and takes a ReplicaSet that asks for no pod as ready: a rollback
# returned before any pod of it was Ready (CI saw it, and once an image that never turns ready passing `up`).
# The condition alone is not enough either: a rollback that scales an old ReplicaSet up again leaves the previous
# rollout's "complete" standing until a new pod is Ready, so no old ReplicaSet is kept, and every rollout, a rollback
# too (git revert, then `up`), starts a new ReplicaSet, which resets the condition at once.
REVISION_HISTORY_LIMIT = 0
ROLLOUT_COMPLETE = {"pulumi.com/waitFor": 'jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=NewReplicaSetAvailable'}


def rolling_update() -> k8s.apps.v1.DeploymentStrategyArgs:
    """A new pod is Ready before an old one stops: the replicas never drop below what was asked."""
    return k8s.apps.v1.DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=MAX_SURGE),
    )


def keep_serving_while_leaving() -> k8s.core.v1.LifecycleArgs:
    return k8s.core.v1.LifecycleArgs(pre_stop=k8s.core.v1.LifecycleHandlerArgs(
        sleep=k8s.core.v1.SleepActionArgs(seconds=PRE_STOP_SECONDS)))


def spread(selector: dict[str, str]) -> k8s.core.v1.TopologySpreadConstraintArgs:
    """Replicas on different nodes, so that losing or draining one node leaves the others serving. Each
    ReplicaSet spreads on its own (pod-template-hash), and a cordoned or NotReady node, whose taint the pods
    do not tolerate, is no domain to balance against: a drain can move its pod to the remaining node."""
    return k8s.core.v1.TopologySpreadConstraintArgs(
        max_skew=1,
        topology_key="kubernetes.io/hostname",
        when_unsatisfiable="DoNotSchedule",
        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
        match_label_keys=["pod-template-hash"],
        node_taints_policy="Honor",
    )
