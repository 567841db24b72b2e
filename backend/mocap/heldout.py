"""Held-out phrasings of the real-motion families: written separately from ``labels.PHRASES`` the way animators
type (everyday verbs, short forms, a typo or two), never used in training; ``tests/mocap`` checks that no training
caption can produce one of them. Used to measure, not to train."""

HELDOUT_PROMPTS = {
    "dance_salsa": ["a couple's salsa, one dancer", "someone doing latin dance steps", "someone dancing to a salsa beat",
                    "a guy grooving to salsa"],
    "dance_indian": ["bharatanatyam style dancing", "someone does a bollywood dance", "a dancer with indian hand gestures"],
    "martial_arts": ["karate kata", "a fighter practicing kicks and punches like karate", "someone does kung-fu moves",
                     "martial artist training"],
    "dance_charleston": ["charleston dance", "a 1920s charleston"],
    "dance_body_roll": ["a dancer rolls his body", "body wave dance move"],
    "jab": ["quick left jab", "a boxer's right jab", "punch with the left fist, boxing"],
    "push_ups": ["person doing pushups", "someone does a few press ups"],
    "crawl": ["crawling on all fours", "someone crawls across the floor"],
    "jumping_jacks": ["doing star jumps", "jumping jacks exercise", "a person does jumpin jacks"],
    "backflip": ["a back flip", "someone flips backward"],
    "throw": ["throwing a baseball", "someone tossing a ball overarm"],
    "meditate": ["sitting in lotus position meditating", "a person sitting cross legged, eyes closed"],
    "celebrate": ["cheering after winning", "victory celebration with fists up"],
    "bow": ["a polite bow", "bowing to the audience"],
}
