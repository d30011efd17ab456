"""Practice questions on when async makes a Django view serve more requests, and when not."""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool
    why: str  # one sentence: why this choice is right or wrong


@dataclass(frozen=True)
class PracticeQuestion:
    slug: str  # url-safe and unique
    level: str  # one of LEVELS
    prompt: str
    choices: tuple[Choice, ...]  # 3 or 4, exactly one correct
    hint: str
    solution: tuple[str, ...]  # 2-5 steps
    mistakes: tuple[str, ...]  # the common mistakes the question targets, 1-3
    try_it: str = ""  # a page of this site that shows the answer on real runs, or ""


LEVELS = ("easy", "medium", "hard")


def _scenario(slug: str) -> str:
    return f"/scenarios/{slug}/"


def _lab(
    slug: str,
    *,
    requests: int,
    server: str = "asgi",
    workers: int = 1,
    threads: int = 1,
    **view_parameters: int,
) -> str:
    """A lab link set up to run ``requests`` concurrent requests of a scenario."""
    query = {
        "scenario": slug,
        "requests": requests,
        **view_parameters,
        "server": server,
        "workers": workers,
        "threads": threads,
    }
    return f"/lab/?{urlencode(query)}"


QUESTIONS: tuple[PracticeQuestion, ...] = (
    # -- easy ----------------------------------------------------------------------------
    PracticeQuestion(
        slug="await-frees-the-loop",
        level="easy",
        prompt="An async def view runs `data = await fetch_data()`, and the upstream service "
        "takes 300 ms to answer. Other requests arrive meanwhile. What does the await do "
        "for them?",
        choices=(
            Choice(
                text="It pauses this view and gives the event loop back, so the other "
                "requests run while this one waits.",
                correct=True,
                why="A suspended coroutine does not hold the loop's thread while it waits, "
                "so the loop is free to start or resume other requests.",
            ),
            Choice(
                text="It makes the upstream call answer sooner than 300 ms.",
                correct=False,
                why="The other service still takes 300 ms; await changes who waits, not "
                "how long the wait is.",
            ),
            Choice(
                text="It holds the whole server until the answer comes back.",
                correct=False,
                why="That is what a blocking call does; an await suspends only the "
                "coroutine that wrote it.",
            ),
            Choice(
                text="It starts a new process to serve the other requests.",
                correct=False,
                why="All the awaiting requests share one event loop in one server process; "
                "the await starts nothing new.",
            ),
        ),
        hint="Ask what the event loop's thread is doing during the 300 ms.",
        solution=(
            "At `await`, the view's coroutine is suspended until the answer arrives, and "
            "control returns to the event loop.",
            "The loop's thread is now idle, so it runs the other requests that are ready, "
            "including starting new ones.",
            "When the upstream answer arrives, the loop resumes this view right after its "
            "await and it returns its response.",
        ),
        mistakes=(
            "Believing that await makes the awaited operation itself faster.",
            "Believing that await blocks the server the way a blocking call does.",
        ),
        try_it=_lab("async-io", requests=20, delay_ms=300),
    ),
    PracticeQuestion(
        slug="declare-async-view",
        level="easy",
        prompt="Which first line makes `my_view` an async view that Django will run on the "
        "event loop?",
        choices=(
            Choice(
                text="`async def my_view(request):`",
                correct=True,
                why="The `async` keyword goes before `def`, which makes the function a "
                "coroutine function.",
            ),
            Choice(
                text="`def async my_view(request):`",
                correct=False,
                why="Python does not accept `async` after `def`, so this line is a syntax error.",
            ),
            Choice(
                text="`def my_view(request):` with an `await` somewhere in its body",
                correct=False,
                why="Python rejects `await` inside a plain `def` function with a SyntaxError.",
            ),
        ),
        hint="Coroutine functions are declared by a keyword that comes first on the line.",
        solution=(
            "Python makes a coroutine function when `async` is written directly before `def`.",
            "Django sees that the view is a coroutine function and, under ASGI, calls it "
            "on the event loop instead of in a worker thread.",
        ),
        mistakes=(
            "Putting `async` after `def` or leaving `def` out.",
            "Thinking that an `await` in a plain `def` function makes it async.",
        ),
        try_it=_scenario("async-io"),
    ),
    PracticeQuestion(
        slug="when-async-pays-off",
        level="easy",
        prompt="For which of these sites does writing the views as async def pay off most?",
        choices=(
            Choice(
                text="Many requests at once, each spending most of its time waiting on "
                "other services or the database.",
                correct=True,
                why="Waiting is exactly what an await hands back to the event loop, and "
                "many waiting requests can share one loop.",
            ),
            Choice(
                text="Few requests, each spending its time resizing images in Python.",
                correct=False,
                why="CPU work never reaches an await, so it holds the event loop and "
                "gains nothing from async.",
            ),
            Choice(
                text="A site where one request must answer faster than it does now.",
                correct=False,
                why="Async does not shorten one request; it lets many requests overlap "
                "their waits.",
            ),
            Choice(
                text="A quiet site whose pages render a template without calling anything slow.",
                correct=False,
                why="With nothing to wait on and little traffic, there is no idle time for "
                "async to reuse.",
            ),
        ),
        hint="Async reuses the time a request spends waiting. Which site waits the most?",
        solution=(
            "An async view only frees the server while it awaits, so the gain comes from "
            "time spent waiting on I/O.",
            "The gain grows with the number of requests waiting at the same time, because "
            "they can all wait on one event loop.",
            "CPU-heavy work, a single request, or fast pages give async no waiting time to reuse.",
        ),
        mistakes=(
            "Expecting async to speed up CPU-heavy work.",
            "Expecting async to make every request faster.",
        ),
        try_it=_lab("async-io", requests=20, delay_ms=300),
    ),
    PracticeQuestion(
        slug="one-request-is-not-faster",
        level="easy",
        prompt="A view calls an API that takes 300 ms to answer. With no other traffic, "
        "about how long does one request take if the view is async def and awaits the call, "
        "compared with a def view that makes a blocking call?",
        choices=(
            Choice(
                text="About 300 ms either way.",
                correct=True,
                why="A lone request still waits for the API's answer, whether it waits "
                "with an await or in a blocked thread.",
            ),
            Choice(
                text="About 150 ms for the async view, twice as fast.",
                correct=False,
                why="Nothing in async makes the API answer sooner, so the wait stays 300 ms.",
            ),
            Choice(
                text="Almost no time for the async view, because await returns at once.",
                correct=False,
                why="An await gives back the loop, not the result; the view continues only "
                "once the answer has come.",
            ),
        ),
        hint="Who is the request waiting for, and does async change that party's speed?",
        solution=(
            "The request cannot answer before the API answers, which takes 300 ms.",
            "Async changes what the server does while the request waits, not the length of "
            "the wait.",
            "So one request takes about 300 ms both ways; async pays off only when other "
            "requests can use the waiting time.",
        ),
        mistakes=(
            "Believing that async makes a single request faster.",
            "Believing that await returns before the awaited result is ready.",
        ),
        try_it=_lab("async-io", requests=1, delay_ms=300),
    ),
    PracticeQuestion(
        slug="replace-time-sleep",
        level="easy",
        prompt="An async def view pauses with `time.sleep(1)`. Which line should replace it?",
        choices=(
            Choice(
                text="`await asyncio.sleep(1)`",
                correct=True,
                why="asyncio.sleep suspends only this coroutine, and the loop serves other "
                "requests during the second.",
            ),
            Choice(
                text="Keep `time.sleep(1)`; inside async def it does not block.",
                correct=False,
                why="time.sleep stops the thread it runs on, and here that thread is the "
                "event loop's.",
            ),
            Choice(
                text="`asyncio.sleep(1)` without await",
                correct=False,
                why="Without await the coroutine is created but never runs, so there is no "
                "pause at all and Python warns that it was never awaited.",
            ),
            Choice(
                text="`await time.sleep(1)`",
                correct=False,
                why="time.sleep blocks the loop for the full second first, then awaiting "
                "its None return value raises a TypeError.",
            ),
        ),
        hint="Pick the sleep that is itself a coroutine, and remember what makes a coroutine run.",
        solution=(
            "time.sleep blocks the thread that calls it, and in an async view that is the "
            "thread running the event loop.",
            "asyncio.sleep returns a coroutine that, when awaited, suspends the view and "
            "lets the loop run other requests.",
            "It must be awaited: a coroutine that is never awaited never runs.",
        ),
        mistakes=(
            "Using time.sleep in async code.",
            "Calling a coroutine function without await.",
            "Awaiting a blocking function and expecting it to stop blocking.",
        ),
        try_it=_scenario("async-sleep"),
    ),
    PracticeQuestion(
        slug="sync-orm-in-async-view",
        level="easy",
        prompt="Inside an async def view you write `total = Reading.objects.count()`. What "
        "happens when the view runs under ASGI?",
        choices=(
            Choice(
                text="Django raises SynchronousOnlyOperation.",
                correct=True,
                why="Django refuses to run a blocking database query on a thread that is "
                "running an event loop.",
            ),
            Choice(
                text="It returns the count, and the loop waits for the query.",
                correct=False,
                why="Django checks for a running event loop before it touches the "
                "database and raises an error instead of blocking the loop.",
            ),
            Choice(
                text="It returns a coroutine that must be awaited to get the count.",
                correct=False,
                why="That describes `acount()`; `count()` is the synchronous method.",
            ),
            Choice(
                text="Django quietly runs the query in a worker thread.",
                correct=False,
                why="Django does that only if you ask for it, with an async ORM method or "
                "sync_to_async.",
            ),
        ),
        hint="Django guards its database code against running on an event loop's thread.",
        solution=(
            "The synchronous ORM would block the thread it runs on, and in an async view "
            "that thread runs the event loop.",
            "Django detects the running loop and raises SynchronousOnlyOperation rather "
            "than stall every request on it.",
            "Use `await Reading.objects.acount()`, or wrap the synchronous call with "
            "sync_to_async and await it.",
        ),
        mistakes=(
            "Calling the synchronous ORM from async code.",
            "Expecting Django to move blocking queries to a thread by itself.",
        ),
        try_it=_scenario("async-orm-sync"),
    ),
    # -- medium --------------------------------------------------------------------------
    PracticeQuestion(
        slug="many-awaits-at-once",
        level="medium",
        prompt="Under Daphne (ASGI), 20 requests arrive together at an async def view that "
        "awaits a 300 ms HTTP call. About how long until the last one has its response?",
        choices=(
            Choice(
                text="A little over 300 ms.",
                correct=True,
                why="All 20 waits overlap on the one event loop, so together they take "
                "about as long as one.",
            ),
            Choice(
                text="About 6 seconds.",
                correct=False,
                why="That is 20 x 300 ms, the time if the requests ran one after another, "
                "which awaiting avoids.",
            ),
            Choice(
                text="About 300 ms times 20 divided by the number of CPU cores.",
                correct=False,
                why="Waiting on I/O uses no CPU, so the number of cores does not set the time.",
            ),
        ),
        hint="While a request awaits, is anything stopping the next one from starting?",
        solution=(
            "Each request starts, reaches its await, and gives the loop back almost at once.",
            "So all 20 are waiting on their calls at the same time, on one event loop.",
            "The answers come back after about 300 ms, and each view finishes quickly; "
            "measured, the 20 took less than twice the time of one.",
        ),
        mistakes=(
            "Adding up the waits of concurrent requests as if they ran in turn.",
            "Thinking I/O waits are limited by the number of CPU cores.",
        ),
        try_it=_lab("async-io", requests=20, delay_ms=300),
    ),
    PracticeQuestion(
        slug="sync-view-under-asgi",
        level="medium",
        prompt="A plain def view makes a blocking HTTP call that takes 300 ms. Under Daphne "
        "(ASGI), 20 requests arrive together. What happens?",
        choices=(
            Choice(
                text="Django runs each request's view in its own worker thread, so the 20 "
                "wait in parallel.",
                correct=True,
                why="Under ASGI Django hands a sync view to a thread with asgiref's "
                "sync_to_async, a separate one per request.",
            ),
            Choice(
                text="The 20 run one after another, because the sync view blocks the event loop.",
                correct=False,
                why="A def view never runs on the event loop under ASGI; only its thread waits.",
            ),
            Choice(
                text="Django rejects the view, because ASGI only serves async views.",
                correct=False,
                why="ASGI serves both kinds; Django adapts a sync view by running it in a thread.",
            ),
        ),
        hint="Where does Django run a view that is not a coroutine function when it is "
        "served by ASGI?",
        solution=(
            "Django sees a plain function and wraps it with sync_to_async, which runs it in "
            "a worker thread.",
            "Each request gets its own thread, so the 20 blocking calls wait side by side "
            "while the loop stays free.",
            "They finish at about the same time: 20 threads, each blocked in its call, "
            "while the server itself stays free.",
        ),
        mistakes=(
            "Believing that a sync view blocks the whole ASGI server.",
            "Believing that ASGI requires every view to be async.",
        ),
        try_it=_lab("sync-io", requests=20, delay_ms=300),
    ),
    PracticeQuestion(
        slug="wsgi-one-worker-one-thread",
        level="medium",
        prompt="The same def view (a 300 ms blocking call) is served by gunicorn with one "
        "sync worker process and one thread (`-w 1`). 20 requests arrive together. About "
        "how long until the last one has its response?",
        choices=(
            Choice(
                text="About 6 seconds.",
                correct=True,
                why="One worker with one thread serves one request at a time, so the 20 "
                "take 20 x 300 ms.",
            ),
            Choice(
                text="A little over 300 ms.",
                correct=False,
                why="That needs 20 requests in flight at once, but this server has room for "
                "only one.",
            ),
            Choice(
                text="About 600 ms.",
                correct=False,
                why="There is no second thread or process to halve the queue.",
            ),
            Choice(
                text="The requests after the first fail at once with an error.",
                correct=False,
                why="They are not refused; they wait in the queue until the worker is free.",
            ),
        ),
        hint="Count how many requests this server can have in progress at once.",
        solution=(
            "Under WSGI each request occupies a worker thread for its whole life, "
            "including its waits.",
            "With one process and one thread, a request starts only when the previous one is done.",
            "So the last of 20 answers after about 20 x 300 ms = 6 s.",
            "More worker processes or threads let more requests run at once.",
        ),
        mistakes=(
            "Forgetting that a WSGI worker thread is busy while its request waits.",
            "Assuming the server runs requests in parallel however it is configured.",
        ),
        try_it=_lab("sync-io", requests=20, delay_ms=300, server="wsgi"),
    ),
    PracticeQuestion(
        slug="gather-vs-sequential",
        level="medium",
        prompt="An async view needs three independent calls that take 300 ms, 200 ms and "
        "100 ms. Awaited one after another they take about 600 ms. About how long do they "
        "take with `await asyncio.gather(a(), b(), c())`?",
        choices=(
            Choice(
                text="About 300 ms.",
                correct=True,
                why="gather runs the three waits at the same time, so they end with the "
                "slowest call.",
            ),
            Choice(
                text="About 600 ms.",
                correct=False,
                why="That is the sum, the time when each call starts only after the one "
                "before it has finished.",
            ),
            Choice(
                text="About 100 ms.",
                correct=False,
                why="gather returns only when all three calls are done, not at the first.",
            ),
            Choice(
                text="About 200 ms, the average.",
                correct=False,
                why="Overlapping waits end at the longest wait, not at the average.",
            ),
        ),
        hint="When all three calls start together, which one decides when they are all done?",
        solution=(
            "Awaiting each call before starting the next adds their times: "
            "300 + 200 + 100 = 600 ms.",
            "asyncio.gather starts all three and waits for all of them, so their waits overlap.",
            "The result is ready when the slowest call, 300 ms, is done.",
        ),
        mistakes=(
            "Thinking that sequential awaits already run concurrently.",
            "Thinking gather returns as soon as the first call finishes.",
            "Gathering calls where one needs the result of another.",
        ),
        try_it=_scenario("async-gather"),
    ),
    PracticeQuestion(
        slug="blocking-client-in-async-view",
        level="medium",
        prompt="An async def view calls the upstream service with the blocking "
        "`urllib.request.urlopen(url)` instead of an async client. Under ASGI, what does "
        "that cost the other requests?",
        choices=(
            Choice(
                text="They wait: the event loop is blocked for the whole call, so nothing "
                "else on it runs.",
                correct=True,
                why="A blocking call inside async def runs on the loop's own thread and "
                "holds it until it returns.",
            ),
            Choice(
                text="Nothing: inside async def, every call lets the loop run others.",
                correct=False,
                why="Only an await gives the loop back; a plain blocking call keeps it.",
            ),
            Choice(
                text="Nothing: Django sees the blocking call and moves it to a thread.",
                correct=False,
                why="Django runs the whole async view on the loop and has no way to tell "
                "that a call inside it blocks.",
            ),
            Choice(
                text="Django raises SynchronousOnlyOperation.",
                correct=False,
                why="That guard protects Django's own database code, not other "
                "libraries such as urllib.",
            ),
        ),
        hint="A call gives the event loop back only at one keyword.",
        solution=(
            "urlopen does not return until the answer arrives, and it never awaits.",
            "In an async view it runs on the event loop's thread, so every other request "
            "on that loop waits until it returns.",
            "Use an async client such as httpx.AsyncClient and await it, or offload the "
            "blocking call with `await asyncio.to_thread(...)`.",
        ),
        mistakes=(
            "Calling a blocking HTTP client inside an async view.",
            "Expecting Django to detect and offload blocking calls.",
        ),
        try_it=_lab("async-sleep", requests=4, delay_ms=500),
    ),
    PracticeQuestion(
        slug="async-orm-methods",
        level="medium",
        prompt="Which line counts the rows of a model correctly inside an async def view?",
        choices=(
            Choice(
                text="`total = await Reading.objects.acount()`",
                correct=True,
                why="acount is the async ORM method, so awaiting it gives the loop back "
                "while the query runs.",
            ),
            Choice(
                text="`total = await Reading.objects.count()`",
                correct=False,
                why="count() runs first, before the await, and raises "
                "SynchronousOnlyOperation on the loop's thread.",
            ),
            Choice(
                text="`total = Reading.objects.count()`",
                correct=False,
                why="A synchronous query in async code raises SynchronousOnlyOperation.",
            ),
            Choice(
                text="`total = asyncio.run(Reading.objects.acount())`",
                correct=False,
                why="asyncio.run cannot start a loop inside the one already running and "
                "raises a RuntimeError.",
            ),
        ),
        hint="The async ORM methods carry a prefix letter.",
        solution=(
            "The synchronous ORM methods refuse to run on a thread with a running event loop.",
            "Django offers async versions prefixed with `a` (`acount`, `aget`, `afirst`) "
            "and `async for` over a queryset.",
            "Await them; for other synchronous code use `await sync_to_async(func)()`.",
        ),
        mistakes=(
            "Putting await in front of a synchronous ORM call.",
            "Starting a new event loop from inside async code.",
        ),
        try_it=_scenario("async-orm"),
    ),
    PracticeQuestion(
        slug="how-django-picks-the-path",
        level="medium",
        prompt="Under ASGI, how does Django decide whether to call a view directly on the "
        "event loop or in a worker thread?",
        choices=(
            Choice(
                text="It checks whether the view is a coroutine function, that is, "
                "declared with async def.",
                correct=True,
                why="Django calls `inspect.iscoroutinefunction(view)`: a coroutine "
                "function runs on the loop, any other callable in a thread.",
            ),
            Choice(
                text="It looks for an await inside the view's body.",
                correct=False,
                why="An async def view with no await is still a coroutine function and "
                "still runs on the loop.",
            ),
            Choice(
                text="It follows a setting that turns async views on for the project.",
                correct=False,
                why="Django has no such setting; each view's own type decides.",
            ),
            Choice(
                text="It times the view's first run and moves slow views to a thread.",
                correct=False,
                why="Django decides from the function's type before calling it and never "
                "measures the view.",
            ),
        ),
        hint="Django decides before the view runs, from the kind of function it is.",
        solution=(
            "Django asks whether the view is a coroutine function, which is what async def makes.",
            "If it is, Django awaits it on the event loop; if not, it wraps it with "
            "sync_to_async and runs it in a worker thread.",
            "So async def with no await, for example CPU work, still runs on the loop and "
            "holds it.",
        ),
        mistakes=(
            "Thinking the presence of await, not async def, makes a view async.",
            "Thinking Django moves slow code off the loop by itself.",
        ),
        try_it=_scenario("sync-io"),
    ),
    # -- hard ----------------------------------------------------------------------------
    PracticeQuestion(
        slug="cpu-blocks-the-loop",
        level="hard",
        prompt="An async def view counts primes for about 0.5 s and never awaits. Under "
        "Daphne (ASGI) on a 4-core machine, 4 requests arrive together. About how long "
        "until the last one has its response?",
        choices=(
            Choice(
                text="About 2 seconds.",
                correct=True,
                why="The computation holds the event loop, so the requests run one at a "
                "time: 4 x 0.5 s.",
            ),
            Choice(
                text="About 0.5 s, because async views run concurrently.",
                correct=False,
                why="Async views overlap only at awaits, and this view has none.",
            ),
            Choice(
                text="About 0.5 s, because Django runs the view in a thread per request.",
                correct=False,
                why="Django runs only def views in threads; an async def view runs on the loop.",
            ),
            Choice(
                text="About 0.125 s, because the work is split over the 4 cores.",
                correct=False,
                why="One event loop runs on one thread, and async never splits one "
                "computation across cores.",
            ),
        ),
        hint="How many times does this view give the event loop back?",
        solution=(
            "The view never awaits, so once it starts it keeps the loop's thread until it returns.",
            "The other three requests cannot even start until it is done, and the loop "
            "stalls for all of them.",
            "So they run in turn and the last answers after about 4 x 0.5 s = 2 s; async "
            "does not help CPU work.",
        ),
        mistakes=(
            "Believing async views run in parallel whatever they do.",
            "Expecting async to use more CPU cores.",
        ),
        try_it=_lab("async-cpu", requests=4, work=200_000),
    ),
    PracticeQuestion(
        slug="offload-cpu-work",
        level="hard",
        prompt="You change the prime-counting async view to "
        "`primes = await asyncio.to_thread(count_primes, limit)`. What does that change?",
        choices=(
            Choice(
                text="The event loop stays free to serve other requests, but the "
                "computations are not faster, because the GIL lets one thread run Python "
                "code at a time.",
                correct=True,
                why="The await hands the loop back while a thread computes, and the GIL "
                "still limits pure-Python CPU work to one thread at a time.",
            ),
            Choice(
                text="Four requests now compute in parallel on four cores and finish four "
                "times sooner.",
                correct=False,
                why="Under the GIL, threads running pure Python take turns rather than "
                "computing at the same time.",
            ),
            Choice(
                text="Nothing: the computation still blocks the event loop.",
                correct=False,
                why="The computation now runs in another thread, and the view awaits it, "
                "which frees the loop.",
            ),
            Choice(
                text="Django raises SynchronousOnlyOperation because count_primes is synchronous.",
                correct=False,
                why="That error comes from Django's database code, and running sync code "
                "in a thread is the safe way to call it.",
            ),
        ),
        hint="Separate two questions: is the loop free, and is the CPU work faster?",
        solution=(
            "asyncio.to_thread runs count_primes in a worker thread and returns something "
            "the view can await.",
            "While the view awaits, the loop serves other requests, so the server stays "
            "responsive to requests that need little CPU.",
            "The prime counting is pure Python, so the GIL lets only one thread compute at "
            "a time and the requests' computing, together, takes no less time.",
        ),
        mistakes=(
            "Expecting threads to make pure-Python CPU work faster.",
            "Thinking offloading changes nothing because the work is still CPU-bound.",
        ),
        try_it=_lab("async-offload", requests=4, work=200_000),
    ),
    PracticeQuestion(
        slug="async-view-under-wsgi",
        level="hard",
        prompt="The async def view that awaits a 300 ms HTTP call is deployed under "
        "gunicorn with one sync worker and one thread (WSGI). 20 requests arrive together. "
        "About how long until the last one has its response?",
        choices=(
            Choice(
                text="About 6 seconds: under WSGI the async view gives no concurrency.",
                correct=True,
                why="Django runs the view with async_to_sync on a new event loop of its "
                "own, and the worker thread waits until the view returns.",
            ),
            Choice(
                text="A little over 300 ms, because the view awaits.",
                correct=False,
                why="The await frees only that request's private loop, and no other "
                "request is waiting on it.",
            ),
            Choice(
                text="Django refuses to serve an async view under WSGI.",
                correct=False,
                why="Django serves it, by running it to completion with async_to_sync.",
            ),
        ),
        hint="Under WSGI, what runs the event loop, and who else could use it?",
        solution=(
            "A WSGI server hands each request to a worker thread and expects a finished "
            "response from it.",
            "Django runs the async view with async_to_sync, on a new event loop that serves "
            "only this request, while the worker thread waits for it.",
            "The thread is busy for the full 300 ms, so one worker with one thread serves "
            "the 20 in turn, about 6 s.",
            "Async views pay off only when an ASGI server shares one loop among many requests.",
        ),
        mistakes=(
            "Believing async def alone makes requests concurrent, whatever the server.",
            "Believing an async view cannot run under WSGI.",
        ),
        try_it=_lab("async-io", requests=20, delay_ms=300, server="wsgi"),
    ),
    PracticeQuestion(
        slug="threads-behind-async-views",
        level="hard",
        prompt="Your views are async def and only await. Yet under Daphne the server "
        "process's count of OS threads rises by about one for every request in progress. "
        "Why?",
        choices=(
            Choice(
                text="Django's ASGI handler runs its request-start and response-close code "
                "through sync_to_async, on a thread made for each request, which stays "
                "parked while the view runs on the loop.",
                correct=True,
                why="Each ASGI request gets its own thread-sensitive context, whose "
                "one-thread executor lives until the request ends, even with no middleware.",
            ),
            Choice(
                text="Daphne runs every view in a worker thread, async or not.",
                correct=False,
                why="Django awaits an async def view on the event loop's thread; the "
                "request's own thread is idle meanwhile.",
            ),
            Choice(
                text="Every await moves the coroutine to another thread.",
                correct=False,
                why="A coroutine suspends and resumes on the loop's own thread.",
            ),
        ),
        hint="Look at what Django does around the view, before and after it runs.",
        solution=(
            "Django's ASGIHandler gives each request its own thread-sensitive context.",
            "Before the view it sends the request_started signal, whose receivers are sync "
            "code, so they run through sync_to_async on a one-thread executor made for "
            "this request.",
            "That thread waits, parked, while the async view runs on the loop; it runs "
            "response.close() at the end and then goes away.",
            "So an async request holds a thread too; unlike a sync view's, that thread is "
            "parked, not blocked in the view's wait.",
        ),
        mistakes=(
            "Believing an async request under ASGI holds no thread of its own.",
            "Believing Daphne runs all views in threads.",
        ),
        try_it=_lab("async-io", requests=20, delay_ms=300),
    ),
    PracticeQuestion(
        slug="async-file-read",
        level="hard",
        prompt="An async def view reads a 64 MB file from the disk with open() and read(). "
        "Which statement is true?",
        choices=(
            Choice(
                text="The read blocks the event loop for as long as it takes; to avoid "
                "that, offload it with `await asyncio.to_thread(...)`.",
                correct=True,
                why="Python's file reads are blocking calls, and in an async view they run "
                "on the loop's thread.",
            ),
            Choice(
                text="Inside async def, open() and read() become asynchronous by themselves.",
                correct=False,
                why="Being in async def changes nothing about a function that blocks; only "
                "awaited coroutines give the loop back.",
            ),
            Choice(
                text="Writing `await file.read()` makes the read asynchronous.",
                correct=False,
                why="read() returns bytes after it has finished blocking, and bytes cannot "
                "be awaited.",
            ),
            Choice(
                text="Local file reads are so fast that they never matter.",
                correct=False,
                why="A large read or a slow disk can hold the loop for a noticeable time, "
                "during which every request waits.",
            ),
        ),
        hint="Does Python's standard library offer an awaitable way to read a file?",
        solution=(
            "Python's standard library has no asynchronous file reading: open() and read() "
            "block the calling thread.",
            "In an async view that thread runs the event loop, so other requests wait for "
            "the whole read.",
            "Running the read in a worker thread with `await asyncio.to_thread(...)` keeps "
            "the loop free.",
        ),
        mistakes=(
            "Assuming file I/O is async inside async def.",
            "Awaiting the result of a blocking call.",
        ),
        try_it=_scenario("async-file"),
    ),
    PracticeQuestion(
        slug="choose-sync-or-async",
        level="hard",
        prompt="Each request to a Django app spends about 5 ms in database queries and "
        "80 ms building a report in pure Python. The team wants faster pages under load "
        "and proposes rewriting all views as async def. What is the best advice?",
        choices=(
            Choice(
                text="Async will not help: the time goes to computing, and async def does "
                "not make computing faster.",
                correct=True,
                why="Async only reuses time spent waiting, and these requests spend most "
                "of theirs computing.",
            ),
            Choice(
                text="Rewrite them: async def views build the reports faster.",
                correct=False,
                why="Python code computes at the same speed inside async def as in a "
                "plain function.",
            ),
            Choice(
                text="Rewrite them: the async views will then build many reports at once "
                "on the event loop.",
                correct=False,
                why="80 ms of CPU work in an async view holds the event loop, so requests "
                "would queue behind each other.",
            ),
            Choice(
                text="Split the report into parts and run them with asyncio.gather.",
                correct=False,
                why="gather overlaps waits; CPU-bound parts on one loop still run one after "
                "another.",
            ),
        ),
        hint="Find where each request spends its time, and ask whether it is waiting or computing.",
        solution=(
            "About 80 of every 85 ms is CPU work, which never reaches an await.",
            "Async reuses waiting time, so here it would save at most a little around the "
            "5 ms of queries.",
            "Building the report inside an async view would even make things worse by "
            "holding the event loop.",
            "So the rewrite would not make the pages faster under load: the time to win "
            "is in the computing, not in the waiting.",
        ),
        mistakes=(
            "Expecting async to speed up CPU-bound requests.",
            "Using asyncio.gather to parallelise CPU work.",
        ),
        try_it=_lab("async-cpu", requests=4, work=200_000),
    ),
    PracticeQuestion(
        slug="thread-per-sync-request",
        level="hard",
        prompt="Under Daphne, 50 requests arrive together at a view that waits 2 s on a "
        "slow service. As a def view with a blocking call, or as an async def view that "
        "awaits, all 50 finish in about 2 s. What differs?",
        choices=(
            Choice(
                text="Each request holds a thread either way; the def view's threads are "
                "blocked in the call, while the async view's threads sit parked and the "
                "50 waits are awaits on the one event loop.",
                correct=True,
                why="Django gives every ASGI request a thread of its own; a sync view waits "
                "in it, an async view waits on the loop and leaves it idle.",
            ),
            Choice(
                text="The def version holds 50 threads; the async version needs only the "
                "loop's one thread.",
                correct=False,
                why="Under Daphne an async request holds a parked thread too, for Django's "
                "request-start and response-close code, so both versions use about 50.",
            ),
            Choice(
                text="Nothing: both versions use one thread.",
                correct=False,
                why="A sync view under ASGI runs in a worker thread, one per request, and "
                "an async request holds one too.",
            ),
            Choice(
                text="The def version blocks the event loop for the 2 s.",
                correct=False,
                why="The blocking call waits in the worker thread, and the loop stays free.",
            ),
        ),
        hint="Count the threads each version holds, then ask what each thread is doing.",
        solution=(
            "Under ASGI, Django runs each request of a def view in its own worker thread "
            "with sync_to_async, and the thread is blocked in the call for the 2 s.",
            "An async request also gets a thread of its own, where Django runs its "
            "request-start and response-close code; it stays parked while the view awaits.",
            "So both versions hold about 50 threads, and both finish in about 2 s.",
            "The difference is where the wait happens: in 50 blocked threads, or as 50 "
            "suspended coroutines on the loop with their threads idle.",
        ),
        mistakes=(
            "Believing a sync view blocks the whole ASGI server.",
            "Believing an async request under ASGI needs no thread.",
        ),
        try_it=_lab("sync-io", requests=50, delay_ms=2000),
    ),
)

_BY_SLUG = {question.slug: question for question in QUESTIONS}


def display_order(question: PracticeQuestion) -> list[int]:
    """The order to show a question's choices in: fixed for each question (so a page
    reads the same every time) but not the bank's, where the right answer comes first."""
    order = list(range(len(question.choices)))
    random.Random(question.slug).shuffle(order)
    return order


def get_question(slug: str) -> PracticeQuestion | None:
    return _BY_SLUG.get(slug)


def questions_at(level: str) -> list[PracticeQuestion]:
    """The questions of one level, in bank order (none for an unknown level)."""
    return [question for question in QUESTIONS if question.level == level]
