"""The warm-up route tables' default route to the NAT gateway.

DeleteRoute has no target filter, so every change reads the route first and touches only a
default route whose NatGatewayId is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

DEFAULT_ROUTE = "0.0.0.0/0"


class RouteState(StrEnum):
    ABSENT = "absent"
    OURS = "ours"  # to our NAT gateway, active
    OURS_BLACKHOLE = "ours-blackhole"  # to our NAT gateway, which is gone or not ready
    FOREIGN = "foreign"  # to anything else: never touched


@dataclass(frozen=True)
class DefaultRoute:
    route_table_id: str
    state: RouteState
    target: str | None = None

    def describe(self) -> str:
        if self.state is RouteState.FOREIGN:
            return (
                f"route table {self.route_table_id} already sends {DEFAULT_ROUTE} to "
                f"{self.target}, which cache-pilot did not create; left alone"
            )
        return f"route table {self.route_table_id}: {self.state.value}"


class RouteConflict(Exception):
    def __init__(self, routes: list[DefaultRoute]) -> None:
        self.routes = routes
        super().__init__("; ".join(route.describe() for route in routes))


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _target_of(route: Any) -> str:
    for key in (
        "NatGatewayId",
        "GatewayId",
        "TransitGatewayId",
        "NetworkInterfaceId",
        "InstanceId",
        "VpcPeeringConnectionId",
        "EgressOnlyInternetGatewayId",
        "LocalGatewayId",
        "CarrierGatewayId",
        "CoreNetworkArn",
    ):
        if route.get(key):
            return str(route[key])
    return "an unknown target"


def read_default_routes(
    ec2: EC2Client, route_table_ids: list[str], nat_gateway_id: str
) -> list[DefaultRoute]:
    response = ec2.describe_route_tables(RouteTableIds=route_table_ids)
    found = {table["RouteTableId"]: table for table in response.get("RouteTables", [])}
    routes = []
    for table_id in route_table_ids:
        table = found.get(table_id)
        if table is None:
            raise LookupError(f"route table {table_id} does not exist")
        default = next(
            (r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == DEFAULT_ROUTE),
            None,
        )
        if default is None:
            routes.append(DefaultRoute(table_id, RouteState.ABSENT))
        elif default.get("NatGatewayId") == nat_gateway_id:
            state = (
                RouteState.OURS_BLACKHOLE
                if default.get("State") == "blackhole"
                else RouteState.OURS
            )
            routes.append(DefaultRoute(table_id, state, nat_gateway_id))
        else:
            routes.append(DefaultRoute(table_id, RouteState.FOREIGN, _target_of(default)))
    return routes


def open_route(ec2: EC2Client, route: DefaultRoute, nat_gateway_id: str) -> None:
    """Make the default route of one table point at our NAT gateway; idempotent."""
    if route.state is RouteState.FOREIGN:
        raise RouteConflict([route])
    if route.state is RouteState.OURS:
        return
    if route.state is RouteState.OURS_BLACKHOLE:
        ec2.replace_route(
            RouteTableId=route.route_table_id,
            DestinationCidrBlock=DEFAULT_ROUTE,
            NatGatewayId=nat_gateway_id,
        )
        return
    try:
        ec2.create_route(
            RouteTableId=route.route_table_id,
            DestinationCidrBlock=DEFAULT_ROUTE,
            NatGatewayId=nat_gateway_id,
        )
    except ClientError as exc:
        if _error_code(exc) != "RouteAlreadyExists":
            raise
        # Someone added a default route since we read it: ours (a concurrent opener) is fine.
        (now,) = read_default_routes(ec2, [route.route_table_id], nat_gateway_id)
        if now.state is RouteState.FOREIGN:
            raise RouteConflict([now]) from exc


def close_route(ec2: EC2Client, route_table_id: str, nat_gateway_id: str) -> bool:
    """Remove the default route of one table if, and only if, it points at our NAT gateway."""
    (route,) = read_default_routes(ec2, [route_table_id], nat_gateway_id)
    if route.state not in (RouteState.OURS, RouteState.OURS_BLACKHOLE):
        return False
    try:
        ec2.delete_route(RouteTableId=route_table_id, DestinationCidrBlock=DEFAULT_ROUTE)
    except ClientError as exc:
        if _error_code(exc) == "InvalidRoute.NotFound":
            return False
        raise
    return True


def nat_gateway_state(ec2: EC2Client, nat_gateway_id: str) -> str:
    """pending, failed, available, deleting, deleted; 'missing' when EC2 does not know it."""
    try:
        gateways = ec2.describe_nat_gateways(NatGatewayIds=[nat_gateway_id]).get("NatGateways", [])
    except ClientError as exc:
        if _error_code(exc) in ("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"):
            return "missing"
        raise
    return str(gateways[0].get("State", "missing")) if gateways else "missing"
