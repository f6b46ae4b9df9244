// Helpers shared by the Kotlin test classes.
package org.katcore.test

import java.time.Instant
import org.katcore.CareStore
import org.katcore.ChecklistAnswer
import org.katcore.ChecklistQuestion
import org.katcore.QuestionKind

/** Runs `block` and returns what it threw, failing unless that is a `T`. (JUnit's Kotlin helper is not packaged.) */
inline fun <reified T : Throwable> assertThrows(block: () -> Unit): T {
    try {
        block()
    } catch (thrown: Throwable) {
        if (thrown is T) return thrown
        throw AssertionError("expected ${T::class.qualifiedName}, got $thrown", thrown)
    }
    throw AssertionError("expected ${T::class.qualifiedName}, nothing was thrown")
}

/** Answers that make every question pass, chosen from what the question asks. */
fun passingAnswer(question: ChecklistQuestion): ChecklistAnswer = when (val kind = question.kind) {
    is QuestionKind.LastTaken -> ChecklistAnswer.NotRecently
    is QuestionKind.BloodPressure -> ChecklistAnswer.BloodPressure(124u, 78u)
    is QuestionKind.Attestation -> ChecklistAnswer.YesNo(true)
    is QuestionKind.Choice -> ChecklistAnswer.Choice(kind.options.first { it.value == "not_prescribed" || it.value == "yes" }.value)
    is QuestionKind.FreeText -> ChecklistAnswer.Text("Be open to what comes")
    is QuestionKind.Screening -> ChecklistAnswer.YesNo(false)
}

/** Answers every checklist and screening question of `sessionId` so that it passes. */
fun answerAllPassing(store: CareStore, sessionId: String, at: Instant? = null) {
    val sessions = store.sessions()
    for (question in store.content().checklist("en")) {
        sessions.answer(sessionId, question.id, passingAnswer(question), at)
    }
}

