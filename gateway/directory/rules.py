"""Group membership → roles: nested-group expansion and role rules, pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from gateway.directory.model import Grant
from gateway.directory.settings import RoleRule


@dataclass(frozen=True, slots=True)
class Group:
    """A group as rules see it: its DN (None in a file directory) and its name."""

    name: str
    dn: str | None = None


def rule_matches(rule: RoleRule, group: Group) -> bool:
    if rule.group_dn is not None:
        return group.dn is not None and normalise_dn(group.dn) == normalise_dn(rule.group_dn)
    assert rule.group is not None
    return fnmatchcase(group.name.lower(), rule.group.lower())


def roles_for(groups: Iterable[Group], rules: Iterable[RoleRule]) -> frozenset[Grant]:
    """Every (role, domain) that any rule gives to a member of any of ``groups``."""
    rules = list(rules)
    return frozenset(
        (rule.role, rule.domain) for group in groups for rule in rules if rule_matches(rule, group)
    )


def normalise_dn(dn: str) -> str:
    """Compare DNs case-insensitively and without spaces around separators."""
    return ",".join(part.strip() for part in dn.split(",")).lower()


def transitive_members(direct: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """For each group key, every non-group member reachable through nested groups.

    ``direct`` maps a group key to its direct member keys; a member key that is itself a
    group key is a nested group. Cycles (a ∈ b ∈ a) are walked once.
    """
    result: dict[str, set[str]] = {}
    for group in direct:
        seen_groups = {group}
        members: set[str] = set()
        stack = [group]
        while stack:
            for member in direct.get(stack.pop(), ()):
                if member in direct:
                    if member not in seen_groups:
                        seen_groups.add(member)
                        stack.append(member)
                else:
                    members.add(member)
        result[group] = members
    return result


def groups_by_member(members_of: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Invert group → members into member → groups."""
    inverted: dict[str, set[str]] = {}
    for group, members in members_of.items():
        for member in members:
            inverted.setdefault(member, set()).add(group)
    return inverted
