"""The floor: booths, clients, visits, the queue, after-care and checks."""
