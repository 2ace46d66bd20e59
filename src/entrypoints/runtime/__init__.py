"""The operator runtime: watch loop, work queue, leader election, health and logging set-up."""
