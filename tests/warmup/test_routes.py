"""The route adapter's idempotent outcomes, including the ones moto cannot produce (a blackhole
route, a delete racing another delete), through botocore's Stubber on a real EC2 client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cache_pilot.aws.routes import (
    DefaultRoute,
    RouteConflict,
    RouteState,
    close_route,
    open_route,
    read_default_routes,
)

NAT = "nat-0a1b2c3d4e5f60718"
TABLE = "rtb-0123456789abcdef0"


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ec2", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def route_table(default: dict[str, str] | None) -> dict[str, Any]:
    routes: list[dict[str, Any]] = [
        {"DestinationCidrBlock": "10.42.0.0/16", "GatewayId": "local", "State": "active"}
    ]
    if default is not None:
        routes.append({"DestinationCidrBlock": "0.0.0.0/0", **default})
    return {"RouteTables": [{"RouteTableId": TABLE, "Routes": routes}]}


@pytest.mark.parametrize(
    ("default", "state", "target"),
    [
        (None, RouteState.ABSENT, None),
        ({"NatGatewayId": NAT, "State": "active"}, RouteState.OURS, NAT),
        ({"NatGatewayId": NAT, "State": "blackhole"}, RouteState.OURS_BLACKHOLE, NAT),
        (
            {"NatGatewayId": "nat-ffffffffffffffff0", "State": "active"},
            RouteState.FOREIGN,
            "nat-ffffffffffffffff0",
        ),
        ({"GatewayId": "igw-0123", "State": "active"}, RouteState.FOREIGN, "igw-0123"),
        ({"TransitGatewayId": "tgw-0123", "State": "active"}, RouteState.FOREIGN, "tgw-0123"),
    ],
)
def test_default_route_is_classified(
    ec2: tuple[Any, Stubber], default: Any, state: RouteState, target: Any
) -> None:
    client, stubber = ec2
    stubber.add_response("describe_route_tables", route_table(default), {"RouteTableIds": [TABLE]})
    assert read_default_routes(client, [TABLE], NAT) == [DefaultRoute(TABLE, state, target)]


def test_blackhole_route_to_our_nat_is_replaced(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "replace_route",
        {},
        {"RouteTableId": TABLE, "DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": NAT},
    )
    open_route(client, DefaultRoute(TABLE, RouteState.OURS_BLACKHOLE, NAT), NAT)


def test_route_created_by_a_concurrent_opener_is_fine(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error(
        "create_route", "RouteAlreadyExists", "The route identified by 0.0.0.0/0 already exists"
    )
    stubber.add_response(
        "describe_route_tables", route_table({"NatGatewayId": NAT, "State": "active"})
    )
    open_route(client, DefaultRoute(TABLE, RouteState.ABSENT), NAT)


def test_route_created_by_someone_else_meanwhile_is_a_conflict(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error(
        "create_route", "RouteAlreadyExists", "The route identified by 0.0.0.0/0 already exists"
    )
    stubber.add_response(
        "describe_route_tables", route_table({"GatewayId": "igw-0123", "State": "active"})
    )
    with pytest.raises(RouteConflict) as raised:
        open_route(client, DefaultRoute(TABLE, RouteState.ABSENT), NAT)
    assert str(raised.value) == (
        f"route table {TABLE} already sends 0.0.0.0/0 to igw-0123, which cache-pilot did not create; left alone"
    )


def test_route_deleted_by_a_concurrent_closer_is_fine(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "describe_route_tables", route_table({"NatGatewayId": NAT, "State": "active"})
    )
    stubber.add_client_error(
        "delete_route", "InvalidRoute.NotFound", "no route with destination-cidr-block 0.0.0.0/0"
    )
    assert close_route(client, TABLE, NAT) is False


def test_close_never_deletes_a_foreign_route(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "describe_route_tables", route_table({"GatewayId": "igw-0123", "State": "active"})
    )
    assert close_route(client, TABLE, NAT) is False  # and no delete_route was sent
