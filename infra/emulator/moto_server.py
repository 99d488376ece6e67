"""moto server, with DynamoDB requests applied one at a time, as DynamoDB applies them.

moto serves each request on its own thread, and its DynamoDB is not safe under that: a
conditional write checks, then writes, with no lock between; a transaction that fails restores
a copy of the whole table taken when it began, undoing whatever another request wrote
meanwhile. Real DynamoDB makes every write and transaction atomic, and Plinth's optimistic
writes (usage counters, batch markers, leases) rely on it. So DynamoDB's requests take one
lock here; every other service is served concurrently as moto serves it.

Same arguments as `moto_server`.
"""

import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _one_at_a_time(self):
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time

if __name__ == "__main__":
    main()
